//! Where each key of a config was written, so an error found after parsing (a value out of
//! range, a layer that does not fit) names the file, line and column, or the `--set` that gave
//! the value.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The config's text and overrides, kept to place keys in errors.
#[derive(Clone, Debug, Default)]
pub struct Places {
    source: String,
    text: String,
    /// Key paths given by `--set`, in order.
    overridden: Vec<String>,
}

/// Where a config came from is not part of what it says.
impl PartialEq for Places {
    fn eq(&self, _: &Places) -> bool {
        true
    }
}

impl Places {
    pub fn new(source: &str, text: &str, overridden: Vec<String>) -> Places {
        Places {
            source: source.to_string(),
            text: text.to_string(),
            overridden,
        }
    }

    /// The place of the key at dotted `key` (list entries by index: `model.layers.2.units`):
    /// `--set K` when an override set it (or a table above it, or a key inside it), else
    /// `file:line:col` of the key in the file, else (a default) the file's name.
    pub fn of(&self, key: &str) -> String {
        let under = |o: &String| key == o || key.starts_with(&format!("{o}."));
        let above = |o: &String| o.starts_with(&format!("{key}."));
        let set = self.overridden.iter().rev();
        if let Some(o) = set
            .clone()
            .find(|o| under(o))
            .or(set.clone().find(|o| above(o)))
        {
            return format!("--set {o}");
        }
        let path: Vec<String> = key.split('.').map(String::from).collect();
        let at = locate(&self.text, &path)
            .map(|s| line_col(&self.text, s.start))
            .unwrap_or_default();
        format!("{}{at}", self.source)
    }
}

/// The span of the key at `path` (or of the entry, for a list index) in the original text; the
/// deepest written key on the way when the rest is not written.
fn locate(text: &str, path: &[String]) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut i = 0;
    let mut found = None;
    loop {
        let Some(name) = path.get(i) else {
            return found;
        };
        let Some((key, mut value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)
        else {
            return found;
        };
        let mut span = key.span();
        i += 1;
        // Numeric segments index lists, such as the entries of [[model.layers]].
        while let (Some(index), DeValue::Array(_)) = (path.get(i), value.get_ref()) {
            let Some(entry) = index
                .parse::<usize>()
                .ok()
                .and_then(|n| value.get_ref().get(n))
            else {
                return Some(span);
            };
            value = entry;
            span = value.span();
            i += 1;
        }
        found = Some(span);
        match value.get_ref() {
            DeValue::Table(t) if i < path.len() => table = t,
            _ => return found,
        }
    }
}

/// `:line:column` (1-based) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(":{line}:{col}")
}
