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
        save(&self.run.join(name), tensors, meta)?;
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

/// Write `tensors` and `meta` to `path` atomically.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: HashMap<String, String>,
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
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("sizes agree");
            (name.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Runtime(format!("{}: cannot serialize: {e}", path.display())))?;
    write_atomic(path, &out)
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

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |why: String| {
        Error::Runtime(format!(
            "{}: not a readable safetensors file: {why}",
            path.display()
        ))
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
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
    Ok(Loaded { tensors, meta })
}

/// Copy tensors into parameters by name; each must exist with the same shape.
pub fn restore(params: &[(String, Tensor)], loaded: &Loaded, source: &Path) -> Result<()> {
    for (name, p) in params {
        let (shape, values) = loaded
            .tensors
            .get(name)
            .ok_or_else(|| Error::Runtime(format!("{}: no tensor {name}", source.display())))?;
        if shape.as_slice() != p.dims() {
            return Err(Error::Runtime(format!(
                "{}: {name} has shape {shape:?}, the model needs {}",
                source.display(),
                p.shape()
            )));
        }
        *p.storage_mut() = crate::Storage::from_vec(p.device(), values.clone());
    }
    Ok(())
}
