//! The keys whose values differ between configs, as dotted paths (`optimizer.lr`,
//! `model.layers.0.units`): what `kiln runs --compare` shows of the runs' configs.

use std::collections::BTreeMap;

use toml::{Table, Value};

/// One step of a dotted key: a table's key or a list's index. Indices order as numbers, so
/// `layers.10` comes after `layers.2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Index(usize),
    Key(String),
}

/// Each dotted key whose value is not the same in every config (a key one config lacks
/// differs), with its value in each (`None` where absent), in key order.
pub fn differences(configs: &[&Table]) -> Vec<(String, Vec<Option<Value>>)> {
    let mut keys: BTreeMap<Vec<Step>, Vec<Option<Value>>> = BTreeMap::new();
    for (i, config) in configs.iter().enumerate() {
        let mut found = Vec::new();
        leaves_of_table(&mut Vec::new(), config, &mut found);
        for (key, value) in found {
            keys.entry(key).or_insert_with(|| vec![None; configs.len()])[i] = Some(value);
        }
    }
    keys.into_iter()
        .filter(|(_, values)| values.iter().any(|v| *v != values[0]))
        .map(|(key, values)| (dotted(&key), values))
        .collect()
}

fn dotted(key: &[Step]) -> String {
    let steps: Vec<String> = key
        .iter()
        .map(|s| match s {
            Step::Index(i) => i.to_string(),
            Step::Key(k) => k.clone(),
        })
        .collect();
    steps.join(".")
}

/// The leaves under a table: a table or a list holding tables (`[[model.layers]]`) is opened,
/// anything else (numbers, strings, a list of them, an empty table) is one value.
fn leaves_of_table(at: &mut Vec<Step>, table: &Table, out: &mut Vec<(Vec<Step>, Value)>) {
    for (key, value) in table {
        at.push(Step::Key(key.clone()));
        leaves(at, value, out);
        at.pop();
    }
}

fn leaves(at: &mut Vec<Step>, value: &Value, out: &mut Vec<(Vec<Step>, Value)>) {
    match value {
        Value::Table(t) if !t.is_empty() => leaves_of_table(at, t, out),
        Value::Array(items) if items.iter().any(Value::is_table) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Step::Index(i));
                leaves(at, item, out);
                at.pop();
            }
        }
        _ => out.push((at.clone(), value.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn only_keys_that_differ_with_lists_of_tables_by_index() {
        let a = table(
            "name = \"t\"\nmetrics = [\"accuracy\"]\n[optimizer]\nlr = 0.01\n[[model.layers]]\nunits = 8\n[[model.layers]]\nunits = 2\n",
        );
        let b = table(
            "name = \"t\"\nmetrics = [\"accuracy\"]\n[optimizer]\nlr = 0.1\nmomentum = 0.9\n[[model.layers]]\nunits = 16\n[[model.layers]]\nunits = 2\n",
        );
        let got = differences(&[&a, &b]);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["model.layers.0.units", "optimizer.lr", "optimizer.momentum"]
        );
        assert_eq!(
            got[1].1,
            [Some(Value::Float(0.01)), Some(Value::Float(0.1))]
        );
        assert_eq!(got[2].1, [None, Some(Value::Float(0.9))]);
    }

    #[test]
    fn list_indices_order_as_numbers_and_lists_of_values_are_one_value() {
        let layers = |last: i64| {
            let mut text = String::new();
            for i in 0..11 {
                let units = if i == 10 { last } else { 4 };
                text.push_str(&format!("[[layers]]\nunits = {units}\n"));
            }
            text
        };
        let a = table(&(layers(1) + "[x]\nsize = [28, 28]\n"));
        let b = table(&(layers(2) + "[x]\nsize = [32, 32]\n"));
        let keys: Vec<String> = differences(&[&a, &b]).into_iter().map(|d| d.0).collect();
        assert_eq!(keys, ["layers.10.units", "x.size"]);
        assert!(differences(&[&a, &a]).is_empty());
    }
}
