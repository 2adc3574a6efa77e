//! Reading CSV files (optionally gzip-compressed) into feature rows and target strings.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::values::small_uint;
use super::FeatureValues;
use crate::error::{Error, Result};
use crate::suggest::did_you_mean;

/// Cells read as missing values.
const MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", "null", "?"];

pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

/// The longest line read (64 MiB): a wider table is not a table kiln can train on, and a file
/// without line breaks (a decompression bomb, a binary file) must not be read into memory whole.
pub const MAX_LINE: u64 = 64 << 20;

/// Open a CSV file, decompressing `.gz` transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::input(path, e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::data(
            path.display().to_string(),
            "a folder, not a CSV file",
        ));
    }
    let reader = BufReader::with_capacity(1 << 16, file);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Byte offsets of the line breaks read so far that a record may still start after; with the
/// count of those before them, the 1-based line of any later byte offset.
#[derive(Default)]
struct LineIndex {
    breaks: VecDeque<u64>,
    before: u64,
}

impl LineIndex {
    /// The line holding byte `offset`. Offsets are asked in increasing order (records are read
    /// in order), so breaks before it are counted and dropped: memory stays at one buffer's.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.breaks.front().is_some_and(|&b| b < offset) {
            self.breaks.pop_front();
            self.before += 1;
        }
        self.before + 1
    }
}

/// Counts line breaks as bytes pass, and refuses a line longer than `MAX_LINE`.
struct Lines {
    inner: Box<dyn Read>,
    offset: u64,
    line_start: u64,
    /// A \r whose next byte (maybe in the next read) says whether it ends a line.
    pending_cr: Option<u64>,
    index: Arc<Mutex<LineIndex>>,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut index = self.index.lock().expect("line index lock");
        // A line ends at \n, at \r\n (counted once, at the \n) and at a lone \r (old Mac
        // files), as csv itself reads them.
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            if let Some(cr) = self.pending_cr.take() {
                if b != b'\n' {
                    index.breaks.push_back(cr);
                    self.line_start = cr + 1;
                }
            }
            match b {
                b'\n' => {
                    index.breaks.push_back(at);
                    self.line_start = at + 1;
                }
                b'\r' => self.pending_cr = Some(at),
                _ => {}
            }
        }
        self.offset += n as u64;
        if self.offset - self.line_start > MAX_LINE {
            let line = index.before + index.breaks.len() as u64 + 1;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {line} is longer than {} MiB", MAX_LINE >> 20),
            ));
        }
        Ok(n)
    }
}

/// A CSV reader that knows each record's line (csv's own count skips blank lines) and its
/// source's name for errors.
pub struct CsvReader {
    rdr: csv::Reader<Lines>,
    index: Arc<Mutex<LineIndex>>,
    source: String,
}

pub fn reader(input: Box<dyn Read>, source: &str) -> CsvReader {
    build_reader(input, source, true)
}

/// A reader of records only, for input that starts after the header (a shard of a file).
pub fn body_reader(input: Box<dyn Read>, source: &str) -> CsvReader {
    build_reader(input, source, false)
}

fn build_reader(input: Box<dyn Read>, source: &str, has_headers: bool) -> CsvReader {
    let index = Arc::new(Mutex::new(LineIndex::default()));
    let lines = Lines {
        inner: input,
        offset: 0,
        line_start: 0,
        pending_cr: None,
        index: index.clone(),
    };
    let rdr = csv::ReaderBuilder::new()
        .has_headers(has_headers)
        .flexible(true)
        .from_reader(lines);
    CsvReader {
        rdr,
        index,
        source: source.to_string(),
    }
}

/// A cell quoted in an error, shortened when long.
fn quoted(cell: &str) -> String {
    const MAX: usize = 40;
    match cell.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}…\"", &cell[..end]),
        None => format!("\"{cell}\""),
    }
}

impl CsvReader {
    pub fn source(&self) -> &str {
        &self.source
    }

    fn line_of(&self, pos: Option<&csv::Position>) -> u64 {
        let offset = pos.map_or(0, |p| p.byte());
        self.index.lock().expect("line index lock").line_of(offset)
    }

    /// The line a record just read starts on: csv's own position counts the blank lines
    /// before a record as part of it, so count back from the record's end instead, less the
    /// line breaks inside its quoted cells.
    fn record_line(&self, record: &csv::StringRecord) -> u64 {
        let end = self.rdr.position().byte();
        let last = self
            .index
            .lock()
            .expect("line index lock")
            .line_of(end.saturating_sub(1));
        let inside: usize = record.iter().map(|f| f.matches('\n').count()).sum();
        last.saturating_sub(inside as u64).max(1)
    }

    /// A read error as data: the line, and what is wrong with it.
    fn malformed(&self, e: csv::Error) -> Error {
        match e.kind() {
            csv::ErrorKind::Utf8 { pos, .. } => Error::data(
                format!("{}:{}", self.source, self.line_of(pos.as_ref())),
                "not UTF-8 text",
            ),
            csv::ErrorKind::Io(io) => Error::data(&self.source, format!("cannot read: {io}")),
            _ => Error::data(&self.source, format!("malformed CSV: {e}")),
        }
    }

    /// The next record into `record`, with the line it starts on; `None` at the end.
    pub fn next_record(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>> {
        match self.rdr.read_record(record) {
            Ok(true) => Ok(Some(self.record_line(record))),
            Ok(false) => Ok(None),
            Err(e) => Err(self.malformed(e)),
        }
    }

    /// Bytes of input read so far: after a record, the offset just past it.
    pub fn offset(&self) -> u64 {
        self.rdr.position().byte()
    }

    /// The header row as names; empty or repeated names are errors.
    pub fn header(&mut self) -> Result<Vec<String>> {
        let h = match self.rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(self.malformed(e)),
        };
        if h.is_empty() || h.iter().all(|c| c.trim().is_empty()) {
            return Err(Error::data(
                &self.source,
                "the file is empty or has no header row",
            ));
        }
        let names: Vec<String> = h.iter().map(|c| c.trim().to_string()).collect();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::data(
                    format!("{}:1", self.source),
                    format!("column {} of the header has no name", i + 1),
                ));
            }
            if let Some(j) = names[..i].iter().position(|n| n == name) {
                return Err(Error::data(
                    format!("{}:1", self.source),
                    format!(
                        "columns {} and {} are both named {}",
                        j + 1,
                        i + 1,
                        quoted(name)
                    ),
                ));
            }
        }
        Ok(names)
    }

    /// Read up to `limit` rows. `feature_cols` are positions in the header; `target_col` too.
    /// A non-numeric feature cell or a ragged row is an error naming file, line, column and
    /// value.
    pub fn read_rows(
        &mut self,
        header: &[String],
        feature_cols: &[usize],
        target_col: Option<usize>,
        limit: usize,
    ) -> Result<Rows> {
        self.read_rows_with(header, feature_cols, &[], target_col, limit)
    }

    /// Show `visit` the cells of `cols` (by their index in `cols`) in up to `limit` rows,
    /// keeping none: for counting what the cells look like before deciding how to read them.
    /// Rows of the wrong length are skipped here; the full read reports them at their line.
    pub fn visit_cells(
        &mut self,
        header: &[String],
        cols: &[usize],
        limit: usize,
        mut visit: impl FnMut(usize, &str),
    ) -> Result<()> {
        let mut record = csv::StringRecord::new();
        for _ in 0..limit {
            match self.rdr.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.malformed(e)),
            }
            if record.len() != header.len() {
                continue;
            }
            for (j, &c) in cols.iter().enumerate() {
                visit(j, &record[c]);
            }
        }
        Ok(())
    }

    /// `read_rows`, also keeping the cells of `cell_cols` (categories, text) as they are.
    pub fn read_rows_with(
        &mut self,
        header: &[String],
        feature_cols: &[usize],
        cell_cols: &[usize],
        target_col: Option<usize>,
        limit: usize,
    ) -> Result<Rows> {
        let mut rows = Rows {
            x: FeatureValues::default(),
            cells: vec![Vec::new(); cell_cols.len()],
            target: Vec::new(),
            lines: Vec::new(),
        };
        let mut record = csv::StringRecord::new();
        while rows.lines.len() < limit {
            match self.rdr.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.malformed(e)),
            }
            let line = self.record_line(&record);
            let place = || format!("{}:{line}", self.source);
            if record.len() != header.len() {
                return Err(Error::data(
                    place(),
                    format!(
                        "row has {} fields, the header has {}",
                        record.len(),
                        header.len()
                    ),
                ));
            }
            for &c in feature_cols {
                push_number(&mut rows.x, &record[c], &header[c], &place)?;
            }
            for (j, &c) in cell_cols.iter().enumerate() {
                rows.cells[j].push(record[c].to_string());
            }
            if let Some(t) = target_col {
                rows.target.push(record[t].trim().to_string());
            }
            rows.lines.push(line);
            // Refuse a table that cannot fit before the allocator aborts (a copy is made
            // while splitting, hence twice what is held).
            if rows.lines.len().is_multiple_of(65_536) {
                let cell_bytes: usize = rows.cells.iter().flatten().map(|c| c.len() + 24).sum();
                let held = (rows.x.bytes() + rows.lines.len() * 40 + cell_bytes) as u128 * 2;
                crate::limits::fits(held).map_err(|e| {
                    Error::data(
                        place(),
                        format!("the table read so far {e}; train on fewer rows or columns"),
                    )
                })?;
            }
        }
        Ok(rows)
    }
}

/// Append a number cell of column `name` to `x` (NaN when missing); a cell that is not a
/// finite float32 is an error at `place` naming the column and the value.
pub fn push_number(
    x: &mut FeatureValues,
    cell: &str,
    name: &str,
    place: &dyn Fn() -> String,
) -> Result<()> {
    if let Some(b) = small_uint(cell.as_bytes()) {
        x.push_byte(b);
        return Ok(());
    }
    let cell = cell.trim();
    let value = if is_missing(cell) {
        f32::NAN
    } else {
        let parsed = cell.parse::<f32>();
        parsed
            .clone()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                let why = if parsed.is_ok() {
                    "is outside float32's finite range (±3.4e38)"
                } else {
                    "is not a number"
                };
                Error::data(
                    place(),
                    format!("column \"{name}\": {} {why}", quoted(cell)),
                )
            })?
    };
    x.push(value);
    Ok(())
}

/// Position of each wanted column in `header`; a missing one is an error naming it.
pub fn column_positions(header: &[String], wanted: &[String], source: &str) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|name| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                let known: Vec<&str> = header.iter().map(String::as_str).collect();
                Error::data(
                    source,
                    format!(
                        "no column \"{name}\" in the header{}",
                        did_you_mean(name, &known)
                    ),
                )
            })
        })
        .collect()
}

/// Rows of a CSV read as numeric features (NaN where missing) and, optionally, a target cell.
pub struct Rows {
    pub x: FeatureValues,
    /// Per cell column (categories, text), its cells.
    pub cells: Vec<Vec<String>>,
    pub target: Vec<String>,
    /// 1-based line number of each row in its file, for errors found later.
    pub lines: Vec<u64>,
}
