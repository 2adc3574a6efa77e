//! `kiln export`: a trained model as an ONNX model in evaluation mode that takes what a user
//! has (raw feature values in the run's feature order, or pixel values) and gives what
//! `kiln predict --proba` gives. The run's preprocessing and the output's softmax (or sigmoid,
//! or the target's units) are nodes of the graph; each layer writes its own nodes
//! (`Layer::export`).

use prost::Message;

use crate::onnx::proto::{
    data_type, Dimension, DimensionValue, GraphProto, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

use crate::data::csv::columns::Encoder;
use crate::data::{DataSchema, Transform};
use crate::loss::Loss;
use crate::nn::Model;
use crate::onnx::{Attr, Graph};

/// The opset written unless `--opset` says otherwise: ONNX 1.12's, which onnxruntime 1.12+
/// and every current converter read.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets kiln can write: from 13 (Softmax over one axis) to 21.
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// The symbolic batch axis of every input and output.
const BATCH: &str = "batch";

/// What goes into an exported model besides the layers.
pub struct Source<'a> {
    pub model: &'a Model,
    pub loss: Loss,
    pub schema: &'a DataSchema,
    pub run_name: &'a str,
    /// SHA-256 of the run's config.toml.
    pub config_sha256: String,
}

/// The ONNX IR version that goes with an opset (ONNX's release table).
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// The encoded ONNX model, or why it cannot be written.
pub fn to_onnx(src: &Source, opset: i64) -> Result<Vec<u8>, String> {
    if !OPSETS.contains(&opset) {
        return Err(format!(
            "opset {opset} is not one kiln writes ({}-{})",
            OPSETS.start(),
            OPSETS.end()
        ));
    }
    let schema = src.schema;
    let mut g = Graph::new(opset);
    let (input, x) = preprocess(&mut g, schema);
    let logits = src.model.export(&mut g, &x)?;
    let outputs = postprocess(&mut g, src, &logits);
    let graph = GraphProto {
        node: std::mem::take(&mut g.nodes),
        name: src.run_name.to_string(),
        initializer: std::mem::take(&mut g.initializers),
        input,
        output: outputs,
    };
    let mut opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: opset,
    }];
    if g.uses_ml {
        // LabelEncoder as of ONNX-ML opset 2 (string keys, int64 values).
        opset_import.push(OperatorSetIdProto {
            domain: "ai.onnx.ml".into(),
            version: 3,
        });
    }
    let model = ModelProto {
        ir_version: ir_version(opset),
        producer_name: "kiln".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("kiln run {}", src.run_name),
        graph: Some(graph),
        opset_import,
        metadata_props: metadata(src),
    };
    Ok(model.encode_to_vec())
}

fn value_info(name: &str, elem_type: i32, dims: &[Option<usize>], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DimensionValue::DimValue(*n as i64),
                None => DimensionValue::DimParam(BATCH.into()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: doc.into(),
    }
}

/// The graph's input and the preprocessed value the model reads: a table's number columns
/// with missing cells filled and scaled as in training, or an image's pixels normalized.
fn preprocess(g: &mut Graph, schema: &DataSchema) -> (Vec<ValueInfoProto>, String) {
    if let Some(img) = &schema.image {
        let input = value_info(
            "image",
            data_type::FLOAT,
            &[None, Some(img.channels), Some(img.height), Some(img.width)],
            "pixel values 0-255, channels first, at the run's image size",
        );
        let per_channel = [1, img.channels, 1, 1];
        let inv_std: Vec<f32> = img.std.iter().map(|s| 1.0 / s).collect();
        let (k255, mean, inv_std) = (
            g.scalar("pixel_max", 255.0),
            g.constant("image_mean", &per_channel, &img.mean),
            g.constant("image_inv_std", &per_channel, &inv_std),
        );
        let x = g.node("Div", &["image", &k255], vec![]);
        let x = g.node("Sub", &[&x, &mean], vec![]);
        let x = g.node("Mul", &[&x, &inv_std], vec![]);
        return (vec![input], x);
    }
    let f = schema.features.len();
    let input = value_info(
        "features",
        data_type::FLOAT,
        &[None, Some(f)],
        "the number columns in the order of the metadata's feature_names; NaN for a missing cell",
    );
    let pre = &schema.preprocess;
    let mut x = "features".to_string();
    if f == 0 {
        // Category and text columns only: nothing to scale (and no `features` input).
        return columns(g, schema, Vec::new(), Vec::new());
    }
    if let Some(fill) = &pre.fill {
        let fill = g.constant("missing_fill", &[f], fill);
        let nan = g.node("IsNaN", &[&x], vec![]);
        x = g.node("Where", &[&nan, &fill, &x], vec![]);
    }
    let x = match (&pre.transform, pre.transform.shift_divisor()) {
        (_, Some((shift, divisor))) => {
            let (shift, divisor) = (
                g.constant("feature_shift", &[f], shift),
                g.constant("feature_divisor", &[f], &divisor),
            );
            let x = g.node("Sub", &[&x, &shift], vec![]);
            g.node("Div", &[&x, &divisor], vec![])
        }
        (Transform::Scale { factor }, None) => {
            let k = g.scalar("feature_scale", *factor);
            g.node("Mul", &[&x, &k], vec![])
        }
        _ => x,
    };
    if schema.columns.is_empty() {
        return (vec![input], x);
    }
    columns(g, schema, vec![input], vec![x])
}

/// The row as training saw it: the numbers (`inputs` and `parts` so far), then each category
/// column one-hot from a string input named after it, and each text column's token ids from
/// an int64 input named after it (tokenized outside the graph: kiln's tokenizer, Unicode
/// NFKC and word segmentation, has no ONNX op; its vocabulary is in the metadata).
fn columns(
    g: &mut Graph,
    schema: &DataSchema,
    mut inputs: Vec<ValueInfoProto>,
    mut parts: Vec<String>,
) -> (Vec<ValueInfoProto>, String) {
    for c in &schema.columns {
        let values = match &c.encoder {
            Encoder::Category { values } => values,
            Encoder::Text { max_len, .. } => {
                inputs.push(value_info(
                    &c.name,
                    data_type::INT64,
                    &[None, Some(*max_len)],
                    "token ids (the metadata's text_column.NAME: vocab index), real tokens first, then 0s",
                ));
                parts.push(g.cast(&c.name, data_type::FLOAT));
                continue;
            }
        };
        inputs.push(value_info(
            &c.name,
            data_type::STRING,
            &[None],
            "the column's value as a string (missing or unknown: the \"(other)\" slot)",
        ));
        // values[0] is "(other)": every string not among the rest maps to index 0.
        let keys = values[1..].to_vec();
        let ids: Vec<i64> = (1..values.len() as i64).collect();
        let index = g.ml_node(
            "LabelEncoder",
            &[&c.name],
            vec![
                Attr::Strings("keys_strings", keys),
                Attr::Ints("values_int64s", ids),
                Attr::Int("default_int64", 0),
            ],
        );
        let depth = g.constant_i64(&format!("{}.depth", c.name), &[values.len() as i64]);
        let off_on = g.constant(&format!("{}.off_on", c.name), &[2], &[0.0, 1.0]);
        parts.push(g.node(
            "OneHot",
            &[&index, &depth, &off_on],
            vec![Attr::Int("axis", -1)],
        ));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let row = g.node("Concat", &refs, vec![Attr::Int("axis", 1)]);
    (inputs, row)
}

/// The graph's outputs from the model's: class probabilities and the class index for a
/// classifier, the value in the target's units for a regressor.
fn postprocess(g: &mut Graph, src: &Source, logits: &str) -> Vec<ValueInfoProto> {
    let k = src.loss.prediction_width(src.model.output_shape().numel());
    let classes = |g: &mut Graph, probs: &str| {
        g.node_into(
            "ArgMax",
            &[probs],
            vec![Attr::Int("axis", 1), Attr::Int("keepdims", 0)],
            "class",
        );
        vec![
            value_info(
                "probabilities",
                data_type::FLOAT,
                &[None, Some(k)],
                "per class, in the order of the metadata's class_names",
            ),
            value_info(
                "class",
                data_type::INT64,
                &[None],
                "the most probable class's index into class_names",
            ),
        ]
    };
    match src.loss {
        Loss::CrossEntropy => {
            g.node_into(
                "Softmax",
                &[logits],
                vec![Attr::Int("axis", 1)],
                "probabilities",
            );
            classes(g, "probabilities")
        }
        Loss::Bce => {
            let p = g.node("Sigmoid", &[logits], vec![]);
            let one = g.scalar("one", 1.0);
            let q = g.node("Sub", &[&one, &p], vec![]);
            g.node_into(
                "Concat",
                &[&q, &p],
                vec![Attr::Int("axis", 1)],
                "probabilities",
            );
            classes(g, "probabilities")
        }
        _ => {
            match src.schema.target_scale {
                Some(t) => {
                    let (std, mean) = (
                        g.scalar("target_std", t.std),
                        g.scalar("target_mean", t.mean),
                    );
                    let v = g.node("Mul", &[logits, &std], vec![]);
                    g.node_into("Add", &[&v, &mean], vec![], "value");
                }
                None => g.node_into("Identity", &[logits], vec![], "value"),
            }
            vec![value_info(
                "value",
                data_type::FLOAT,
                &[None, Some(k)],
                "the prediction in the target's units",
            )]
        }
    }
}

/// `metadata_props`: what a consumer needs to feed the model and read its outputs.
fn metadata(src: &Source) -> Vec<StringStringEntryProto> {
    let s = src.schema;
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let mut props = vec![
        ("kiln_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_name", src.run_name.to_string()),
        ("config_sha256", src.config_sha256.clone()),
        ("task", s.task.name().to_string()),
        ("target", s.target.clone()),
    ];
    match &s.image {
        Some(img) => props.extend([
            ("input", "image".to_string()),
            ("image_channels", img.channels.to_string()),
            ("image_height", img.height.to_string()),
            ("image_width", img.width.to_string()),
            ("image_values", "float pixel values 0-255, NCHW".to_string()),
        ]),
        None => {
            props.extend([
                ("input", "features".to_string()),
                ("feature_names", json(&s.features)),
            ]);
            let named = |text: bool| -> Vec<String> {
                s.columns
                    .iter()
                    .filter(|c| c.is_text() == text)
                    .map(|c| c.name.clone())
                    .collect()
            };
            let (categories, text) = (named(false), named(true));
            if !categories.is_empty() {
                props.push(("category_inputs", json(&categories)));
            }
            if !text.is_empty() {
                props.push(("text_inputs", json(&text)));
            }
        }
    }
    let mut props: Vec<(String, String)> =
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for c in s.columns.iter().filter(|c| c.is_text()) {
        let encoder = serde_json::to_string(&c.encoder).expect("an encoder serializes");
        props.push((format!("text_column.{}", c.name), encoder));
    }
    if !s.classes.is_empty() {
        props.push(("class_names".into(), json(&s.classes)));
    }
    props
        .into_iter()
        .map(|(key, value)| StringStringEntryProto { key, value })
        .collect()
}
