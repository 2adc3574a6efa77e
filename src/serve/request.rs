//! TensorFlow Serving's REST bodies: `{"instances": [...]}` (row format) or `{"inputs": ...}`
//! (columnar) in, `{"predictions": [...]}` or `{"outputs": ...}` back. Each problem names the
//! instance and field at fault.

use base64::Engine;
use serde_json::{Map, Value};

use crate::data::images::{decode_bytes, ImageSet};
use crate::data::DataSchema;

/// A request the server refuses: the HTTP status and the message for `{"error": ...}`.
#[derive(Debug)]
pub struct Problem {
    pub status: u16,
    pub message: String,
    /// For a 405: the methods the path answers (the `Allow` header).
    pub allow: Option<&'static str>,
}

pub fn bad(message: impl Into<String>) -> Problem {
    Problem {
        status: 400,
        message: message.into(),
        allow: None,
    }
}

/// A parsed request: model input rows `[n, width]` (preprocessed as in training), and
/// whether the answer is columnar.
pub struct Parsed {
    pub x: Vec<f32>,
    pub n: usize,
    pub columnar: bool,
}

/// The instances of a body, each with its place for errors (`instances[3]`).
fn instances(body: &[u8], schema: &DataSchema) -> Result<(Vec<(String, Value)>, bool), Problem> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let Value::Object(mut top) = v else {
        return Err(bad(
            "the body must be a JSON object with \"instances\" or \"inputs\"",
        ));
    };
    if let Some(sig) = top.remove("signature_name") {
        if !matches!(sig.as_str(), Some("serving_default" | "")) {
            return Err(bad(format!(
                "signature_name {sig}: the only signature is \"serving_default\""
            )));
        }
    }
    if let Some(k) = top.keys().find(|k| *k != "instances" && *k != "inputs") {
        return Err(bad(format!(
            "unknown key \"{k}\": a predict request has \"instances\" (row format) or \"inputs\" (columnar)"
        )));
    }
    let listed = |list: Vec<Value>, what: &str| -> Vec<(String, Value)> {
        list.into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{what}[{i}]"), v))
            .collect()
    };
    match (top.remove("instances"), top.remove("inputs")) {
        (Some(_), Some(_)) => Err(bad("give \"instances\" or \"inputs\", not both")),
        (None, None) => Err(bad("no \"instances\" or \"inputs\" in the body")),
        (Some(Value::Array(list)), None) => Ok((listed(list, "instances"), false)),
        (Some(_), None) => Err(bad("\"instances\" must be a list")),
        (None, Some(Value::Array(list))) => Ok((listed(list, "inputs"), true)),
        (None, Some(Value::Object(cols))) => Ok((columns_to_rows(cols, schema)?, true)),
        (None, Some(_)) => Err(bad(
            "\"inputs\" must be an object of named columns or a list",
        )),
    }
}

/// Columnar `{"name": [v0, v1, ...], ...}` as row objects (an image model's single input may
/// also be one `{"b64": ...}` or a list of them under `image`).
fn columns_to_rows(
    cols: Map<String, Value>,
    schema: &DataSchema,
) -> Result<Vec<(String, Value)>, Problem> {
    if schema.image.is_some() && cols.contains_key("b64") {
        return Ok(vec![("inputs".into(), Value::Object(cols))]);
    }
    let mut n = None;
    for (name, v) in &cols {
        let len = match v {
            Value::Array(a) => a.len(),
            _ => {
                return Err(bad(format!(
                    "inputs.{name}: expected a list of values, one per instance"
                )))
            }
        };
        match n {
            None => n = Some((name.clone(), len)),
            Some((ref first, m)) if m != len => {
                return Err(bad(format!(
                    "inputs.{name} has {len} values, inputs.{first} has {m}: every column needs one per instance"
                )))
            }
            _ => {}
        }
    }
    let n = n.map_or(0, |(_, n)| n);
    Ok((0..n)
        .map(|i| {
            let row: Map<String, Value> = cols
                .iter()
                .map(|(name, v)| (name.clone(), v[i].clone()))
                .collect();
            (format!("inputs[{i}]"), Value::Object(row))
        })
        .collect())
}

/// The common request of a table of numbers: `{"instances": [[numbers], ...]}`, read
/// straight into floats.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberLists {
    instances: Vec<Vec<Option<f32>>>,
    #[serde(default)]
    signature_name: Option<String>,
}

/// `NumberLists` when the body is one and every row is whole; None sends the body down the
/// general path, which also names any problem.
fn number_lists(body: &[u8], schema: &DataSchema) -> Option<Parsed> {
    if schema.image.is_some() || !schema.columns.is_empty() {
        return None;
    }
    let lists: NumberLists = serde_json::from_slice(body).ok()?;
    let f = schema.features.len();
    let signature_ok = matches!(
        lists.signature_name.as_deref(),
        None | Some("serving_default" | "")
    );
    if !signature_ok || lists.instances.is_empty() || lists.instances.iter().any(|r| r.len() != f) {
        return None;
    }
    let n = lists.instances.len();
    let mut x: Vec<f32> = lists
        .instances
        .into_iter()
        .flatten()
        .map(|v| v.unwrap_or(f32::NAN))
        .collect();
    // Missing values the run cannot fill, and numbers beyond f32: the general path names them.
    if x.iter().any(|v| v.is_infinite())
        || schema.preprocess.fill.is_none() && x.iter().any(|v| v.is_nan())
    {
        return None;
    }
    schema.preprocess.apply(&mut x, f);
    Some(Parsed {
        x,
        n,
        columnar: false,
    })
}

/// The most instances one request may carry: each costs its input, activations and answer
/// at once (a 15 MB body of 700,000 short rows took a gigabyte before this cap).
pub const MAX_INSTANCES: usize = 10_000;

fn too_many(n: usize) -> Problem {
    Problem {
        status: 413,
        message: format!(
            "{n} instances in one request; at most {MAX_INSTANCES}: split it into several requests"
        ),
        allow: None,
    }
}

/// Parse a predict body into model input rows.
pub fn parse(body: &[u8], schema: &DataSchema) -> Result<Parsed, Problem> {
    if let Some(parsed) = number_lists(body, schema) {
        if parsed.n > MAX_INSTANCES {
            return Err(too_many(parsed.n));
        }
        return Ok(parsed);
    }
    let (rows, columnar) = instances(body, schema)?;
    if rows.is_empty() {
        return Err(bad("no instances: give at least one"));
    }
    if rows.len() > MAX_INSTANCES {
        return Err(too_many(rows.len()));
    }
    let n = rows.len();
    let x = match &schema.image {
        Some(_) => images(&rows, schema)?,
        None => table(&rows, schema)?,
    };
    Ok(Parsed { x, n, columnar })
}

/// A table model's rows: numbers by column name (or in feature order for a list), category
/// and text cells as strings; missing values filled as in training or refused.
fn table(rows: &[(String, Value)], schema: &DataSchema) -> Result<Vec<f32>, Problem> {
    let names = schema.feature_columns();
    let f = schema.features.len();
    // The columns in order, for errors: the first few of a wide table.
    let listed = if names.len() <= 12 {
        names.join(", ")
    } else {
        format!(
            "{}, … ({} columns; GET the model's /metadata for all)",
            names[..10].join(", "),
            names.len()
        )
    };
    let mut numbers = Vec::with_capacity(rows.len() * f);
    let mut cells: Vec<Vec<String>> = vec![Vec::with_capacity(rows.len()); schema.columns.len()];
    for (place, row) in rows {
        let values: Vec<(&str, &Value)> = match row {
            Value::Object(m) => names
                .iter()
                .map(|name| {
                    m.get(name).map(|v| (name.as_str(), v)).ok_or_else(|| {
                        bad(format!(
                            "{place}: no \"{name}\"{} (the model reads {listed}; null for a missing value)",
                            crate::suggest::did_you_mean(name, &m.keys().map(String::as_str).collect::<Vec<_>>()),
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Value::Array(a) if a.len() == names.len() => {
                names.iter().map(String::as_str).zip(a.iter()).collect()
            }
            Value::Array(a) => {
                return Err(bad(format!(
                    "{place}: {} values, the model reads {} in this order: {listed}",
                    a.len(),
                    names.len(),
                )))
            }
            _ => {
                return Err(bad(format!(
                    "{place}: expected an object keyed by column name or a list in feature order"
                )))
            }
        };
        for (i, (name, v)) in values.into_iter().enumerate() {
            if i < f {
                numbers.push(match v {
                    Value::Number(x) => {
                        let v = x.as_f64().unwrap_or(f64::NAN) as f32;
                        if !v.is_finite() {
                            return Err(bad(format!(
                                "{place}.{name}: {x} is outside float32's finite range (±3.4e38)"
                            )));
                        }
                        v
                    }
                    Value::Null => f32::NAN,
                    other => {
                        return Err(bad(format!(
                            "{place}.{name}: expected a number, got {}",
                            describe(other)
                        )))
                    }
                });
            } else {
                cells[i - f].push(match v {
                    Value::String(s) => s.clone(),
                    Value::Number(x) => x.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => {
                        return Err(bad(format!(
                            "{place}.{name}: expected a string, got {}",
                            describe(other)
                        )))
                    }
                });
            }
        }
    }
    if schema.preprocess.fill.is_none() {
        if let Some(i) = numbers.iter().position(|v| v.is_nan()) {
            return Err(bad(format!(
                "{}.{}: missing value (the run does not fill missing values)",
                rows[i / f].0,
                schema.features[i % f]
            )));
        }
    }
    schema.preprocess.apply(&mut numbers, f);
    Ok(schema.join_columns(numbers, &cells, rows.len()).0)
}

/// An image model's rows: `{"b64": "<PNG/JPEG bytes>"}` (or `{"image": {"b64": ...}}`) each,
/// decoded, sized and normalized as predict does a file.
fn images(rows: &[(String, Value)], schema: &DataSchema) -> Result<Vec<f32>, Problem> {
    let s = schema.image.as_ref().expect("an image model");
    let mut data = Vec::with_capacity(rows.len() * s.channels * s.height * s.width);
    for (place, row) in rows {
        let b64 = row
            .get("b64")
            .or_else(|| row.get("image").and_then(|v| v.get("b64")))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "{place}: expected {{\"b64\": \"<base64 of a PNG or JPEG file>\"}}"
                ))
            })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| bad(format!("{place}.b64: not base64: {e}")))?;
        let pixels = decode_bytes(&bytes, s)
            .map_err(|e| bad(format!("{place}.b64: cannot decode the image: {e}")))?;
        data.extend_from_slice(&pixels);
    }
    let set = ImageSet {
        data,
        n: rows.len(),
        schema: s.clone(),
    };
    let idx: Vec<u32> = (0..rows.len() as u32).collect();
    Ok(set.batch(&idx, None).to_vec())
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(40).collect();
    let kind = match v {
        Value::String(_) => "the string",
        Value::Bool(_) => "the boolean",
        Value::Array(_) => "the list",
        Value::Object(_) => "the object",
        _ => "",
    };
    format!(
        "{kind} {short}{}",
        if short.len() < text.len() { "…" } else { "" }
    )
}

/// f32 as the shortest decimal that reads back as the same f32 (0.1, not 0.10000000149).
/// Callers have checked it is finite.
fn push_number(out: &mut String, v: f32) {
    use std::fmt::Write;
    let _ = write!(out, "{v}");
}

fn push_vector(out: &mut String, r: &[f32]) {
    out.push('[');
    for (i, &v) in r.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_number(out, v);
    }
    out.push(']');
}

/// `items` as a JSON list, each written by `each`.
fn push_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

/// The answer, written straight to text: per instance the class and its probabilities (a
/// classifier) or the value; `values` must be finite.
pub fn answer(values: &[f32], k: usize, schema: &DataSchema, columnar: bool) -> String {
    let rows: Vec<&[f32]> = values.chunks_exact(k.max(1)).collect();
    let mut out = String::with_capacity(24 + rows.len() * (16 + 14 * k));
    // Class names as JSON strings, escaped once.
    let names: Vec<String> = schema
        .classes
        .iter()
        .map(|c| Value::String(c.clone()).to_string())
        .collect();
    let class = |r: &[f32]| names[crate::metrics::argmax(r)].as_str();
    if !names.is_empty() {
        if columnar {
            out.push_str("{\"outputs\":{\"class\":");
            push_list(&mut out, &rows, |o, r| o.push_str(class(r)));
            out.push_str(",\"probabilities\":");
            push_list(&mut out, &rows, |o, r| push_vector(o, r));
            out.push_str("}}");
        } else {
            out.push_str("{\"predictions\":");
            push_list(&mut out, &rows, |o, r| {
                o.push_str("{\"class\":");
                o.push_str(class(r));
                o.push_str(",\"probabilities\":");
                push_vector(o, r);
                o.push('}');
            });
            out.push('}');
        }
        return out;
    }
    out.push_str(if columnar {
        "{\"outputs\":"
    } else {
        "{\"predictions\":"
    });
    push_list(&mut out, &rows, |o, r| {
        if k == 1 {
            push_number(o, r[0]);
        } else {
            push_vector(o, r);
        }
    });
    out.push('}');
    out
}
