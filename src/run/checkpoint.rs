//! Checkpoints and model files in safetensors: named f32 tensors plus string metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::tensor::Tensor;

/// The `checkpoints/` folder of a run: one file per saved state, named by epoch (and by step
/// for a mid-epoch interrupt, which sorts after the epoch before it), the newest `keep_last`
/// kept.
pub struct Checkpoints {
    run: PathBuf,
    keep_last: usize,
}

impl Checkpoints {
    pub fn new(run: &Path, keep_last: usize) -> Checkpoints {
        Checkpoints {
            run: run.to_path_buf(),
            keep_last: keep_last.max(1),
        }
    }

    /// The run-relative name of the checkpoint after `epochs` finished epochs, or, with
    /// `mid_epoch`, of one taken inside the next epoch after `step` optimizer steps.
    pub fn name(epochs: usize, step: u64, mid_epoch: bool) -> String {
        if mid_epoch {
            format!(
                "checkpoints/epoch-{:04}-step-{step:07}.safetensors",
                epochs + 1
            )
        } else {
            format!("checkpoints/epoch-{epochs:04}.safetensors")
        }
    }

    /// Write checkpoint `name` (from `name()`), then delete all but the newest `keep_last`.
    pub fn save(
        &self,
        name: &str,
        tensors: &[(String, Tensor)],
        meta: HashMap<String, String>,
    ) -> Result<()> {
        save(&self.run.join(name), tensors, meta, true)?;
        self.prune()
    }

    fn prune(&self) -> Result<()> {
        let dir = self.run.join("checkpoints");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        for old in files
            .iter()
            .take(files.len().saturating_sub(self.keep_last))
        {
            std::fs::remove_file(old).map_err(|e| Error::io(old, e))?;
        }
        Ok(())
    }
}

/// The metadata key of the checksum of a file's tensors.
const CHECKSUM: &str = "data_crc32c";

/// CRC-32C over the tensors in name order, each name then its little-endian bytes: what
/// `load` checks, so altered or damaged tensor data is refused rather than trained on.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.collect();
    sorted.sort_by_key(|(name, _)| *name);
    let crc = sorted.iter().fold(0u32, |crc, (name, data)| {
        crc32c::crc32c_append(crc32c::crc32c_append(crc, name.as_bytes()), data)
    });
    format!("{crc:08x}")
}

/// Write `tensors` and `meta` (plus the data's checksum) to `path` atomically; `durable` waits
/// until the file is on disk (see `files::replace` for the other case).
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    mut meta: HashMap<String, String>,
    durable: bool,
) -> Result<()> {
    // A failed device yields no data: the previous checkpoint stays the last good one.
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let data: Vec<u8> = t
                .try_to_vec()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            Ok((name.clone(), t.dims().to_vec(), data))
        })
        .collect::<Result<_>>()?;
    let sum = checksum(bytes.iter().map(|(n, _, d)| (n.as_str(), d.as_slice())));
    meta.insert(CHECKSUM.into(), sum);
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("sizes agree");
            (name.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Runtime(format!("{}: cannot serialize: {e}", path.display())))?;
    if durable {
        write_atomic(path, &out)
    } else {
        crate::files::replace(path, &out)
    }
}

/// A loaded file: tensors by name (shape, values) and metadata.
pub struct Loaded {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub meta: HashMap<String, String>,
}

impl Loaded {
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }
}

/// Read a model or checkpoint file. Anything wrong with it (not safetensors, a tensor that is
/// not f32, data that does not match its checksum) is an error naming the file.
pub fn load(path: &Path) -> Result<Loaded> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::input(path, e))?
        .len();
    let bad = |why: String| Error::data(path.display().to_string(), why);
    crate::limits::fits(size as u128).map_err(|e| bad(format!("reading the file {e}")))?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes, &path.display().to_string())
}

/// A model or checkpoint file's contents; `source` names it in errors.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Loaded> {
    let bad = |why: String| Error::data(source, format!("not a readable safetensors file: {why}"));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}; kiln reads F32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    let meta = header.metadata().clone().unwrap_or_default();
    if let Some(want) = meta.get(CHECKSUM) {
        let got = checksum(st.tensors().iter().map(|(n, v)| (n.as_str(), v.data())));
        if &got != want {
            return Err(Error::data(
                source,
                "the tensor data does not match the checksum saved with it: the file was altered or damaged",
            ));
        }
    }
    Ok(Loaded { tensors, meta })
}

/// A file kiln wrote into a run (its best model or a checkpoint): it must carry the checksum
/// kiln writes, and hold exactly `names` (nothing else), so an edited or foreign file is
/// refused rather than half-used.
pub fn load_own(path: &Path, names: &[String]) -> Result<Loaded> {
    let loaded = load(path)?;
    let bad = |why: String| Error::data(path.display().to_string(), why);
    if !loaded.meta.contains_key(CHECKSUM) {
        return Err(bad(
            "no checksum of its tensors: not a file kiln wrote, or one edited since".into(),
        ));
    }
    let mut extra: Vec<&String> = loaded
        .tensors
        .keys()
        .filter(|k| !names.contains(k))
        .collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(bad(format!("a tensor {name} that the model does not have")));
    }
    Ok(loaded)
}

/// Copy tensors into parameters by name; each must exist with the same shape.
pub fn restore(params: &[(String, Tensor)], loaded: &Loaded, source: &Path) -> Result<()> {
    for (name, p) in params {
        let (shape, values) = loaded.tensors.get(name).ok_or_else(|| {
            Error::data(source.display().to_string(), format!("no tensor {name}"))
        })?;
        if shape.as_slice() != p.dims() {
            return Err(Error::data(
                source.display().to_string(),
                format!("{name} has shape {shape:?}, the model needs {}", p.shape()),
            ));
        }
        *p.storage_mut() = crate::Storage::from_vec(p.device(), values.clone());
    }
    Ok(())
}
