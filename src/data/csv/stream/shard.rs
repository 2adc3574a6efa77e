//! A rank's share of a training file, so that under `mpirun` each rank reads only its part.
//! A plain file is cut into byte ranges moved forward to line starts (every record is one
//! line under `data.stream`, so a line start is a record start); a gzip file cannot be entered
//! in the middle, so every rank decompresses it and keeps every `world`-th record.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

/// Rank `rank` of `world` readers; `Shard::WHOLE` reads everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { rank: 0, world: 1 };

    /// Rank `rank` of `world` (`rank < world`, `world ≥ 1`; anything else is a caller's bug).
    pub fn new(rank: usize, world: usize) -> Shard {
        assert!(world >= 1 && rank < world, "shard {rank} of {world}");
        Shard { rank, world }
    }

    /// Whether this rank keeps the record at `index` of a file read whole (gzip).
    pub fn keeps(&self, index: u64) -> bool {
        index % self.world as u64 == self.rank as u64
    }
}

/// The bytes `[start, end)` of a plain file of `size` bytes whose records `shard` reads:
/// rank r owns the lines that start in `[r·size/N, (r+1)·size/N)`, never the header (the
/// data starts at `data_start`). Consecutive ranks' ranges meet, so each line is read once.
pub fn byte_range(
    file: &mut File,
    size: u64,
    data_start: u64,
    shard: Shard,
) -> std::io::Result<(u64, u64)> {
    let cut = |r: usize| (r as u128 * size as u128 / shard.world as u128) as u64;
    let start = line_start_at(file, size, data_start, cut(shard.rank))?;
    let end = line_start_at(file, size, data_start, cut(shard.rank + 1))?;
    Ok((start, end.max(start)))
}

/// The first line start at or after `at`: `data_start`, or the byte after a `\n`.
fn line_start_at(file: &mut File, size: u64, data_start: u64, at: u64) -> std::io::Result<u64> {
    if at <= data_start {
        return Ok(data_start);
    }
    if at >= size {
        return Ok(size);
    }
    // The byte before `at` says whether a line starts there.
    file.seek(SeekFrom::Start(at - 1))?;
    let mut rest = BufReader::new(Read::by_ref(file).take(size - (at - 1)));
    let mut skipped = Vec::new();
    let n = rest.read_until(b'\n', &mut skipped)?;
    if skipped.last() == Some(&b'\n') {
        Ok(at - 1 + n as u64)
    } else {
        Ok(size)
    }
}

/// Line breaks in the first `end` bytes of `path`: the lines before a shard's first byte,
/// counted only when an error needs its line number.
pub fn lines_before(path: &std::path::Path, end: u64) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut rdr = BufReader::with_capacity(1 << 16, file.take(end));
    let mut count = 0;
    loop {
        let buf = match rdr.fill_buf() {
            Ok([]) | Err(_) => return count,
            Ok(b) => b,
        };
        count += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        rdr.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_meet_at_line_starts_and_cover_the_data() {
        let text = "h1,h2\n1,2\n33,44\n\n555,666\n7,8";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let size = text.len() as u64;
        for world in 1..=7 {
            let mut prev = 6; // after the header
            for rank in 0..world {
                let mut f = File::open(&path).unwrap();
                let (s, e) = byte_range(&mut f, size, 6, Shard::new(rank, world)).unwrap();
                assert_eq!(s, prev, "world {world} rank {rank}");
                assert!(s == size || s == 6 || text.as_bytes()[s as usize - 1] == b'\n');
                prev = e;
            }
            assert_eq!(prev, size);
        }
        assert_eq!(lines_before(&path, 10), 2);
    }
}
