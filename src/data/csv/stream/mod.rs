//! `data.stream = true`: the training CSV read in chunks, never whole. A first pass (`fit`)
//! fits the schema the in-memory path would (task, classes, statistics, row count) and keeps
//! the validation rows; each epoch then reads the file again through a seeded shuffle buffer
//! (`shuffle`), one shard of it per MPI rank (`shard`), and hands out batches. Memory is the
//! buffer, a batch and the schema, whatever the file's size.

mod fit;
mod records;
mod shard;
mod shuffle;

use std::path::PathBuf;
use std::sync::Arc;

pub use fit::prepare;
pub use shard::Shard;
pub use shuffle::ShuffleBuffer;

use super::{is_missing, push_number, FeatureValues};
use crate::backend::Device;
use crate::config::Missing;
use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::tensor::{Rng, Stream, Tensor};
use records::Records;

/// What the first pass learned about a streamed training file, and how to read it again.
#[derive(Debug)]
pub struct TrainStream {
    path: PathBuf,
    source: String,
    header: Vec<String>,
    /// Positions of the number feature columns and of the target in the header.
    numbers: Vec<usize>,
    target: usize,
    schema: DataSchema,
    holdout: Option<Holdout>,
    /// Training rows in the whole file (validation rows and dropped rows left out).
    rows: usize,
    /// Training rows per class (classification).
    class_counts: Vec<usize>,
    seed: u64,
    /// Rows in the shuffle buffer.
    buffer: usize,
}

/// The per-row validation draw: a record is held out when `uniform_at(seed, key) < share`,
/// its key being the byte offset just past it, so any reader of any shard decides alike and
/// nothing per row is kept.
#[derive(Clone, Copy, Debug)]
struct Holdout {
    seed: u64,
    share: f64,
}

impl Holdout {
    fn holds(&self, key: u64) -> bool {
        (crate::backend::cpu::uniform_at(self.seed, key) as f64) < self.share
    }
}

/// One training row, parsed: its number features (bytes while they fit) and its encoded
/// target.
struct Row {
    x: FeatureValues,
    y: f32,
}

/// Why a record gives no training row.
enum Skip {
    Held,
    Dropped,
}

/// A row's number cells with NaN where missing; errors name the line and column.
fn numbers_of(
    record: &csv::StringRecord,
    cols: &[usize],
    header: &[String],
    place: &dyn Fn() -> String,
) -> Result<FeatureValues> {
    let mut x = FeatureValues::default();
    for &c in cols {
        push_number(&mut x, &record[c], &header[c], place)?;
    }
    Ok(x)
}

/// The error for a missing number under `data.missing = "error"`, as the in-memory path says it.
fn missing_value(place: String, column: &str) -> Error {
    Error::data(
        place,
        format!("column \"{column}\": missing value (set data.missing = \"mean\", \"zero\" or \"drop\" to accept it)"),
    )
}

fn has_missing(x: &FeatureValues) -> Option<usize> {
    match x {
        FeatureValues::Bytes(_) => None,
        FeatureValues::Floats(v) => v.iter().position(|v| v.is_nan()),
    }
}

impl TrainStream {
    /// Training rows in the whole file, as the first pass counted them.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn class_counts(&self) -> &[usize] {
        &self.class_counts
    }

    /// The rows of epoch `epoch` (0-based) that `shard` reads, in the order this epoch gives
    /// them (file order without `shuffle`), after the first `skip` of them (a resumed epoch's
    /// batches already done, read again and passed over). Batches come to `device`.
    pub fn epoch(
        self: &Arc<Self>,
        epoch: usize,
        shuffle: bool,
        shard: Shard,
        skip: usize,
        device: Device,
    ) -> Result<StreamEpoch> {
        let records = Records::open(&self.path, &self.source, self.header.len(), shard)?;
        // One draw of the epoch's stream seeds each rank's buffer: same seed, same order.
        let base = Rng::stream(self.seed, Stream::Shuffle(epoch)).next_u64();
        let rng = Rng::derive(base, shard.rank as u64);
        let capacity = if shuffle { self.buffer } else { 0 };
        let mut e = StreamEpoch {
            stream: self.clone(),
            records,
            buffer: ShuffleBuffer::new(capacity, rng),
            ended: false,
            device,
            given: 0,
        };
        for _ in 0..skip {
            if e.next_row()?.is_none() {
                return Err(e.changed());
            }
        }
        Ok(e)
    }

    /// The next record's training row, or why it gives none.
    fn row(
        &self,
        records: &Records,
        line: u64,
        key: u64,
    ) -> Result<std::result::Result<Row, Skip>> {
        if self.holdout.is_some_and(|h| h.holds(key)) {
            return Ok(Err(Skip::Held));
        }
        let record = &records.record;
        let place = || records.place(line);
        let drop = self.schema.preprocess.missing == Missing::Drop;
        let cell = record[self.target].trim();
        if drop && is_missing(cell) {
            return Ok(Err(Skip::Dropped));
        }
        let x = numbers_of(record, &self.numbers, &self.header, &place)?;
        if let Some(c) = has_missing(&x) {
            match self.schema.preprocess.missing {
                Missing::Drop => return Ok(Err(Skip::Dropped)),
                Missing::Error => return Err(missing_value(place(), &self.schema.features[c])),
                Missing::Mean | Missing::Zero => {}
            }
        }
        let y = self.schema.encode_target(cell, place)?;
        Ok(Ok(Row { x, y }))
    }
}

/// The rows of epoch `epoch` of `split` when it is streamed (`None` when it is held in
/// memory), for `shard`, from row `done` on (a resumed epoch's rows already trained, read
/// again and passed over). What the training loop calls each epoch.
pub fn open_epoch(
    split: &crate::data::Split,
    epoch: usize,
    shuffle: bool,
    shard: Shard,
    done: usize,
) -> Result<Option<StreamEpoch>> {
    split
        .stream()
        .map(|s| s.epoch(epoch, shuffle, shard, done, split.device()))
        .transpose()
}

/// One epoch of a streamed split being read.
pub struct StreamEpoch {
    stream: Arc<TrainStream>,
    records: Records,
    buffer: ShuffleBuffer<Row>,
    ended: bool,
    device: Device,
    /// Rows handed out (or skipped) so far.
    given: usize,
}

impl StreamEpoch {
    /// The next batch of `rows` rows as the model's input `[n, features]` (preprocessed) and
    /// targets `[n]`; fewer at the end of the epoch. An error when the epoch has no row left:
    /// the file changed since the first pass.
    pub fn next_batch(&mut self, rows: usize) -> Result<(Tensor, Tensor)> {
        self.next_rows(rows)?.ok_or_else(|| self.changed())
    }

    /// As `next_batch`, `None` at the end of this reader's rows (a shard's row count is only
    /// known once read).
    pub fn next_rows(&mut self, rows: usize) -> Result<Option<(Tensor, Tensor)>> {
        let s = &self.stream;
        let f = s.schema.features.len();
        let (mut x, mut y) = (Vec::with_capacity(rows * f), Vec::with_capacity(rows));
        while y.len() < rows {
            let Some(row) = self.next_row()? else { break };
            match row.x {
                FeatureValues::Bytes(b) => x.extend(b.iter().map(|&v| f32::from(v))),
                FeatureValues::Floats(v) => x.extend_from_slice(&v),
            }
            y.push(row.y);
        }
        if y.is_empty() {
            return Ok(None);
        }
        let n = y.len();
        let s = &self.stream;
        s.schema.preprocess.apply(&mut x, f);
        if let Some(t) = &s.schema.target_scale {
            t.apply(&mut y);
        }
        let x = Tensor::from_vec(x, [n, f]).to_device(self.device);
        let y = Tensor::from_vec(y, [n]).to_device(self.device);
        Ok(Some((x, y)))
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        while !self.ended {
            let Some((line, key)) = self.records.next()? else {
                self.ended = true;
                break;
            };
            if let Ok(row) = self.stream.row(&self.records, line, key)? {
                if let Some(out) = self.buffer.push(row) {
                    self.given += 1;
                    return Ok(Some(out));
                }
            }
        }
        let out = self.buffer.drain_one();
        self.given += usize::from(out.is_some());
        Ok(out)
    }

    fn changed(&self) -> Error {
        Error::data(
            &self.stream.source,
            format!(
                "the file ended after {} training rows this epoch, but its first pass counted {}: it changed while training",
                self.given, self.stream.rows
            ),
        )
    }
}
