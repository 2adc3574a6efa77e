//! Checkpoints and model files in safetensors: named f32 tensors plus string metadata.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::tensor::Tensor;

/// Write `tensors` and `meta` to `path` atomically.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let data: Vec<u8> = t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), t.dims().to_vec(), data)
        })
        .collect();
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
