//! The TOML config: strict parsing with places in errors, `--set` overrides, defaults.
//!
//! The file is parsed to a TOML table, each `--set key.path=VALUE` is applied to that table,
//! and the result is deserialized into [`Config`]. An error names the file, line and column of
//! the offending key (or the `--set` that introduced it), the key path, and for a misspelt key
//! the closest known one.

mod differences;
mod places;
mod schema;
mod validate;

use std::path::Path;

use toml::Value;

use crate::suggest::did_you_mean;
pub use differences::differences;
use places::line_col;
pub use places::Places;
pub use schema::*;

use crate::error::{Error, Result};

/// Read, override and validate a config file.
/// A config that cannot be read (missing, a folder, not UTF-8) is bad input, exit 2.
pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
    let source = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::config(source, "no such config file"))
        }
        Err(_) if path.is_dir() => {
            return Err(Error::config(source, "a folder, not a config file"))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        Error::config(format!("{source}:{line}"), "not UTF-8 text")
    })?;
    parse(&text, &source, overrides)
}

/// The config file as the user wrote it with the `--set`s applied, defaults not filled in,
/// and its data and weight paths made absolute: a config that means the same from any
/// directory and still lets a later `--set` change a kind (`optimizer.type`) without
/// tripping over another kind's defaults. Checked as `load` checks it.
pub fn written_with_overrides(path: &Path, overrides: &[String]) -> Result<toml::Table> {
    load(path, overrides)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::config(path.display().to_string(), e.message().to_string()))?;
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    for (section, key) in PATH_KEYS {
        let value = table
            .get_mut(section)
            .and_then(|t| t.as_table_mut())
            .and_then(|t| t.get_mut(key));
        if let Some(toml::Value::String(p)) = value {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs.display().to_string();
            }
        }
    }
    Ok(table)
}

/// The keys that hold a path to data or weights, relative to the folder kiln runs in.
pub const PATH_KEYS: [(&str, &str); 4] = [
    ("data", "train"),
    ("data", "valid"),
    ("data", "test"),
    ("model", "init_from"),
];

/// `source` names the text in errors.
pub fn parse(text: &str, source: &str, overrides: &[String]) -> Result<Config> {
    // A config is a page of settings: a huge one is a mistake (a data file named by accident),
    // and parsing it would take memory in proportion.
    const MAX_CONFIG: usize = 1 << 20;
    if text.len() > MAX_CONFIG {
        return Err(Error::config(
            source,
            format!("{} bytes: a config is at most 1 MiB", text.len()),
        ));
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| line_col(text, s.start))
            .unwrap_or_default();
        let mut message = e.message().trim().to_string();
        if let Some(span) = e.span().filter(|_| message.contains("duplicate key")) {
            let key = text.get(span).unwrap_or("").trim();
            message = format!("{message} `{key}`");
        }
        Error::config(format!("{source}{at}"), message)
    })?;
    let mut overridden = Vec::new();
    for o in overrides {
        overridden.push(apply_override(&mut table, o)?);
    }
    let places = Places::new(source, text, overridden);
    let mut config: Config =
        serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
            let mut path: Vec<String> = e.path().iter().map(segment_name).collect();
            path.retain(|s| !s.is_empty());
            let message = explain(e.inner().message(), &mut path);
            let key = path.join(".");
            let message = if key.is_empty() {
                message
            } else {
                format!("{key}: {message}")
            };
            Error::config(places.of(&key), message)
        })?;
    config.places = places;
    validate::validate(&config)?;
    Ok(config)
}

/// The resolved config as TOML, for the run directory.
pub fn to_toml(config: &Config) -> String {
    toml::to_string(config).expect("a config always serializes")
}

fn segment_name(seg: &serde_path_to_error::Segment) -> String {
    use serde_path_to_error::Segment;
    match seg {
        Segment::Seq { index } => index.to_string(),
        Segment::Map { key } => key.clone(),
        Segment::Enum { variant } => variant.clone(),
        Segment::Unknown => String::new(),
    }
}

/// Rewrite serde's messages in config terms; an unknown key is added to the path, and so is
/// the key a semantic check names as "at `a.b`: ..." (checks inside a table's conversion).
fn explain(message: &str, path: &mut Vec<String>) -> String {
    if let Some(rest) = message.strip_prefix("at `") {
        if let Some((key, why)) = rest.split_once("`: ") {
            *path = key.split('.').map(String::from).collect();
            return why.to_string();
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if path.last().map(String::as_str) != Some(key) {
            path.push(key.to_string());
        }
        return format!(
            "unknown key{}{}",
            did_you_mean(key, &known),
            if known.is_empty() {
                String::new()
            } else {
                format!(" (known: {})", known.join(", "))
            }
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return format!(
            "unknown value \"{value}\"{}; expected one of {}",
            did_you_mean(value, &known),
            known.join(", ")
        );
    }
    if let Some(field) = message.strip_prefix("missing field `") {
        return format!("missing key `{}`", field.trim_end_matches('`'));
    }
    message.to_string()
}

/// A `--set` VALUE: TOML (`0.01`, `"relu"`, `[16, 8]`), or else a bare string (`relu`).
pub fn override_value(raw: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

/// Apply `a.b.c=VALUE` to the table. VALUE is TOML, or else a bare string. Numeric path
/// segments index arrays (`model.layers.1.units`). Returns the key path.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<String> {
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--set {arg}: expected KEY=VALUE")))?;
    let value = override_value(raw);
    let parts: Vec<&str> = key.split('.').collect();
    let bad = |why: String| Error::config(format!("--set {key}"), why);
    let mut node = table
        .entry(parts[0].to_string())
        .or_insert_with(|| Value::Table(toml::Table::new()));
    for (i, part) in parts.iter().enumerate().skip(1) {
        let parent = parts[..i].join(".");
        node = match node {
            Value::Table(t) => t
                .entry(part.to_string())
                .or_insert_with(|| Value::Table(toml::Table::new())),
            Value::Array(items) => {
                let len = items.len();
                let index: usize = part
                    .parse()
                    .map_err(|_| bad(format!("{parent} is a list; index it with a number")))?;
                items
                    .get_mut(index)
                    .ok_or_else(|| bad(format!("{parent} has {len} entries, no index {index}")))?
            }
            _ => return Err(bad(format!("{parent} is a value, not a table"))),
        };
    }
    *node = value;
    Ok(key.to_string())
}
