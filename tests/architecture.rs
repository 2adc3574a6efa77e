//! The crate's layers (src/lib.rs): each top-level module names only modules below it, and the
//! backend names nothing else in the crate. Read from the sources, so a new import that breaks
//! the order fails here.

use std::collections::BTreeMap;
use std::path::Path;

/// Rank of each top-level module: a module may name only modules of lower rank (or, for the
/// tensor ⇄ autograd pair, its partner).
const LAYERS: &[(&str, u32)] = &[
    ("backend", 0),
    ("error", 1), // converts backend::DeviceError
    ("suggest", 1),
    ("limits", 1),
    ("table", 1),
    ("files", 2),
    ("dist", 2), // the ranks of a data-parallel run and their collectives
    ("tensor", 3),
    ("autograd", 3),
    ("ops", 4),
    ("onnx", 4),
    ("nn", 5),
    ("loss", 5),
    ("optim", 5),
    ("config", 6),
    ("data", 7),
    ("metrics", 7),
    ("run", 8),
    ("export", 8),
    ("starter", 8), // kiln init's configs: reads data, writes config
    ("train", 9),
    ("serve", 9),
    ("sweep", 9), // runs `kiln train` children; reads run directories
    ("cli", 10),
];

/// Names the crate root re-exports, by the module they come from.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("Storage", "backend"),
    ("Device", "backend"),
    ("set_threads", "backend"),
    ("threads", "backend"),
    ("Tensor", "tensor"),
    ("Shape", "tensor"),
    ("Rng", "tensor"),
    ("no_grad", "autograd"),
    ("is_grad_enabled", "autograd"),
    ("NoGradGuard", "autograd"),
    ("Error", "error"),
    ("Result", "error"),
];

fn rank(module: &str) -> u32 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .unwrap_or_else(|| panic!("src/{module}: add it to LAYERS in tests/architecture.rs"))
        .1
}

/// The source without comments and without the in-file unit tests.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level modules each file under `src/<module>` names through `crate::`.
fn imports() -> BTreeMap<String, Vec<(String, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel.split(['/', '.']).next().unwrap().to_string();
            if module == "lib" || module == "main" || !rel.ends_with(".rs") {
                continue;
            }
            let code = code_of(&std::fs::read_to_string(&path).unwrap());
            for piece in code.split("crate::").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let target = ROOT_REEXPORTS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(name.clone(), |(_, m)| m.to_string());
                if target != module {
                    out.entry(module.clone())
                        .or_default()
                        .push((rel.clone(), target));
                }
            }
        }
    }
    out
}

#[test]
fn every_module_names_only_layers_below_it() {
    let mut wrong = Vec::new();
    for (module, uses) in imports() {
        for (file, target) in uses {
            let pair = matches!(
                (module.as_str(), target.as_str()),
                ("tensor", "autograd") | ("autograd", "tensor")
            );
            let allowed = if module == "backend" {
                false
            } else {
                pair || rank(&target) < rank(&module)
            };
            if !allowed {
                wrong.push(format!("src/{file} names crate::{target}"));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers of src/lib.rs:\n{}",
        wrong.join("\n")
    );
}
