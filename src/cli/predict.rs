//! `kiln predict`

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::autograd::no_grad;
use crate::config::{Missing, Task};
use crate::data;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::argmax;
use crate::nn::Mode;
use crate::tensor::{Rng, Tensor};

/// Predict with a trained model: CSV in (a file, or `-`/nothing for stdin), one output row per
/// input row, in input order.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its best model) or a checkpoint file.
    run: PathBuf,
    /// A CSV file, or `-` for stdin (the default).
    input: Option<PathBuf>,
    /// Write here (atomically) instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
    format: String,
    /// Add one p_<class> column per class.
    #[arg(long)]
    proba: bool,
    /// Rows per batch: memory stays flat however long the input.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn exec(a: Args) -> Result<()> {
    super::select_device(&a.device)?;
    let trained = super::open_trained(&a.run)?;
    let (model, loss) = trained.model()?;
    let schema = &trained.info.schema;
    let (input, source): (Box<dyn Read>, String) = match &a.input {
        Some(p) if p.as_os_str() != "-" => (data::open(p)?, p.display().to_string()),
        _ => (Box::new(std::io::stdin().lock()), "<stdin>".into()),
    };
    let tmp = a.output.as_ref().map(|p| {
        p.with_file_name(format!(
            ".{}.tmp",
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("predictions")
        ))
    });
    let sink: Box<dyn Write> = match &tmp {
        Some(t) => Box::new(std::fs::File::create(t).map_err(|e| Error::io(t, e))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let mut rdr = data::reader(input);
    let header = data::header(&mut rdr, &source)?;
    let cols = data::column_positions(&header, &schema.features, &source)?;
    let f = schema.features.len();
    let classification = schema.task == Task::Classification;
    let write_err =
        |e: std::io::Error| Error::io(a.output.as_deref().unwrap_or(Path::new("<stdout>")), e);
    if a.format == "csv" {
        let mut head = vec!["prediction".to_string()];
        if a.proba && classification {
            head.extend(schema.classes.iter().map(|c| format!("p_{c}")));
        }
        writeln!(out, "{}", head.join(",")).map_err(write_err)?;
    }
    let _guard = no_grad();
    let mut rng = Rng::new(0);
    loop {
        let rows = data::read_rows(&mut rdr, &source, &header, &cols, None, a.batch_size.max(1))?;
        let n = rows.lines.len();
        if n == 0 {
            break;
        }
        let mut x = rows.x;
        if schema.preprocess.fill.is_none() {
            if let Some(i) = x.iter().position(|v| v.is_nan()) {
                let why = if schema.preprocess.missing == Missing::Drop {
                    " (a dropped row would break input order)"
                } else {
                    ""
                };
                return Err(Error::data(
                    format!("{source}:{}", rows.lines[i / f]),
                    format!("column \"{}\": missing value{why}", schema.features[i % f]),
                ));
            }
        }
        schema.preprocess.apply(&mut x, f);
        let output = model.forward(
            &Tensor::from_vec(x, [n, f]),
            &mut Mode {
                training: false,
                rng: &mut rng,
            },
        );
        let k = output.numel() / n;
        let probs: Vec<f32> = match loss {
            Loss::CrossEntropy => output.softmax(1).to_vec(),
            Loss::Bce => output
                .sigmoid()
                .to_vec()
                .iter()
                .flat_map(|&p| [1.0 - p, p])
                .collect(),
            _ => output.to_vec(),
        };
        let width = if loss == Loss::Bce { 2 } else { k };
        for row in probs.chunks_exact(width) {
            let prediction = if classification {
                schema.classes[argmax(row)].clone()
            } else {
                format!("{}", row[0])
            };
            let line = if a.format == "csv" {
                let mut cells = vec![csv_cell(&prediction)];
                if a.proba && classification {
                    cells.extend(row.iter().map(|p| format!("{p}")));
                }
                cells.join(",")
            } else {
                let mut obj = serde_json::Map::new();
                obj.insert(
                    "prediction".into(),
                    if classification {
                        json!(prediction)
                    } else {
                        json!(row[0])
                    },
                );
                if a.proba && classification {
                    for (c, p) in schema.classes.iter().zip(row) {
                        obj.insert(format!("p_{c}"), json!(p));
                    }
                }
                serde_json::Value::Object(obj).to_string()
            };
            writeln!(out, "{line}").map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    drop(out);
    if let (Some(tmp), Some(dest)) = (tmp, &a.output) {
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    }
    Ok(())
}

/// Quote a CSV cell when it needs it.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
