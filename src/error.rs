//! The one error type: every variant knows its exit code and says where the problem is.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::backend::DeviceError;

#[derive(Debug)]
pub enum Error {
    /// Bad command-line usage.
    Usage(String),
    /// A config problem at a place in a file (or in a `--set` override).
    Config { place: String, message: String },
    /// Bad data: file, row, column, value.
    Data { place: String, message: String },
    /// A model that cannot be built: the layer and the shapes.
    Model { layer: String, message: String },
    /// Several problems found at once (`kiln check` reports them all).
    Many(Vec<Error>),
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A failure while running: non-finite loss, a device error, a corrupt checkpoint.
    Runtime(String),
    /// Training stopped by Ctrl-C or SIGTERM after writing a checkpoint.
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config { .. } | Error::Data { .. } | Error::Model { .. } => 2,
            Error::Many(errors) => errors.iter().map(Error::exit_code).max().unwrap_or(2),
            Error::Io { .. } | Error::Runtime(_) => 1,
            Error::Interrupted(_) => 130,
        }
    }

    /// Ok when no problem was found, the one problem, or all of them (`Many`).
    pub fn from_problems(mut problems: Vec<Error>) -> Result<()> {
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(Error::Many(problems)),
        }
    }

    /// An input file or folder that cannot be opened: one that does not exist (or is the wrong
    /// kind) is bad input (exit 2), any other failure an I/O error naming it.
    pub fn input(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        let path = path.as_ref();
        let place = path.display().to_string();
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::data(place, "no such file or folder"),
            std::io::ErrorKind::IsADirectory => Error::data(place, "a folder, not a file"),
            std::io::ErrorKind::NotADirectory => Error::data(place, "a file, not a folder"),
            _ => Error::io(path, source),
        }
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn config(place: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            place: place.into(),
            message: message.into(),
        }
    }

    pub fn data(place: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Data {
            place: place.into(),
            message: message.into(),
        }
    }

    pub fn model(layer: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Model {
            layer: layer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) | Error::Interrupted(m) => write!(f, "{m}"),
            Error::Config { place, message } | Error::Data { place, message } => {
                write!(f, "{place}: {message}")
            }
            Error::Model { layer, message } => write!(f, "{layer}: {message}"),
            Error::Many(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// A failure on the CUDA device is a runtime error (exit code 1).
impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Error {
        Error::Runtime(format!("CUDA: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_failure_is_a_runtime_error() {
        let what = "allocate 4 floats: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")";
        let e = Error::from(DeviceError(what.into()));
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), format!("CUDA: {what}"));
    }
}
