//! The training file's records in file order, one at a time: every record, or one shard's.
//! Each comes with its line (for errors) and a key that names it whatever the shard: the
//! byte offset just past it in the (decompressed) file, which draws validation rows.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::shard::{byte_range, lines_before, Shard};
use crate::data::csv::{body_reader, open, reader, CsvReader};
use crate::error::{Error, Result};

pub struct Records {
    rdr: CsvReader,
    pub record: csv::StringRecord,
    path: PathBuf,
    source: String,
    columns: usize,
    /// Where the reader's input starts in the file (a plain shard's first byte, else 0).
    base: u64,
    /// gzip read by several ranks: the records this rank keeps.
    every: Option<Shard>,
    /// Records read so far (kept or not).
    index: u64,
}

/// The line `line` of a reader whose input starts at byte `base` of `path`, as a place.
pub fn place(source: &str, path: &Path, base: u64, line: u64) -> String {
    let before = if base == 0 {
        0
    } else {
        lines_before(path, base)
    };
    format!("{source}:{}", line + before)
}

impl Records {
    /// The records `shard` reads of the file at `path`, whose header has `columns` names.
    pub fn open(path: &Path, source: &str, columns: usize, shard: Shard) -> Result<Records> {
        let gz = path.extension().is_some_and(|e| e == "gz");
        let (rdr, base, every) = if gz || shard.world == 1 {
            let mut rdr = reader(open(path)?, source);
            rdr.header()?;
            (rdr, 0, (shard.world > 1).then_some(shard))
        } else {
            let mut head = reader(open(path)?, source);
            head.header()?;
            let data_start = head.offset();
            let io = |e| Error::input(path, e);
            let mut file = File::open(path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            let (start, end) = byte_range(&mut file, size, data_start, shard).map_err(io)?;
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            let input = BufReader::with_capacity(1 << 16, file.take(end - start));
            (body_reader(Box::new(input), source), start, None)
        };
        Ok(Records {
            rdr,
            record: csv::StringRecord::new(),
            path: path.to_path_buf(),
            source: source.to_string(),
            columns,
            base,
            every,
            index: 0,
        })
    }

    /// The next record of this reader's share into `self.record`: `(line, key)`, or `None`
    /// at the end. A ragged row or a line break inside a quoted cell is an error at its line.
    pub fn next(&mut self) -> Result<Option<(u64, u64)>> {
        loop {
            let line = match self.rdr.next_record(&mut self.record) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.relocate(e)),
            };
            let key = self.base + self.rdr.offset();
            self.index += 1;
            if self.every.is_some_and(|s| !s.keeps(self.index - 1)) {
                continue;
            }
            if self.record.len() != self.columns {
                return Err(Error::data(
                    self.place(line),
                    format!(
                        "row has {} fields, the header has {}",
                        self.record.len(),
                        self.columns
                    ),
                ));
            }
            if self.record.as_slice().contains(['\n', '\r']) {
                return Err(Error::data(
                    self.place(line),
                    "a line break inside a quoted cell: data.stream reads records of one line each (ranks split the file at line breaks); remove it, or train without data.stream",
                ));
            }
            return Ok(Some((line, key)));
        }
    }

    /// A record's line as an error's place, in the whole file's numbering.
    pub fn place(&self, line: u64) -> String {
        place(&self.source, &self.path, self.base, line)
    }

    /// An error of the CSV reader with its line in the whole file's numbering.
    fn relocate(&self, e: Error) -> Error {
        match e {
            Error::Data { place, message } if self.base > 0 => {
                let line = place
                    .strip_prefix(&self.source)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .and_then(|n| n.parse::<u64>().ok());
                match line {
                    Some(line) => Error::data(self.place(line), message),
                    None => Error::Data { place, message },
                }
            }
            e => e,
        }
    }
}
