//! TensorBoard event files, written natively: TFRecord framing around hand-encoded `Event`
//! protobufs holding scalar summaries.
//!
//! Record: `u64 length (LE) | u32 masked CRC-32C of the length bytes | data | u32 masked
//! CRC-32C of the data`. Event fields used: 1 `wall_time` (double), 2 `step` (int64),
//! 3 `file_version` (string), 5 `summary` (Summary { 1: repeated Value { 1: tag, 2:
//! simple_value (float) } }). The file is an append-only log, flushed every epoch, as
//! TensorBoard's own writers do; its reader tolerates a torn last record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// TensorBoard's CRC mask: rotate right by 15 bits and add a constant.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = vec![(1 << 3) | 1]; // wall_time: fixed64
    e.extend_from_slice(&wall_time.to_le_bytes());
    varint((2 << 3) as u64, &mut e); // step: varint
    varint(step as u64, &mut e);
    body(&mut e);
    e
}

fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    event(wall_time, step, |e| {
        let mut v = Vec::new();
        bytes_field(1, tag.as_bytes(), &mut v);
        v.push((2 << 3) | 5); // simple_value: fixed32
        v.extend_from_slice(&value.to_le_bytes());
        let mut summary = Vec::new();
        bytes_field(1, &v, &mut summary);
        bytes_field(5, &summary, e);
    })
}

use super::unix_seconds as now;

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// One event file, `events.out.tfevents.<time>.<host>` in `dir`.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("events.out.tfevents.{}.{}", now() as u64, host()));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let version = event(now(), 0, |e| bytes_field(3, b"brain.Event:2", e));
        w.record(&version)?;
        Ok(w)
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let io = |e| Error::io(&self.path, e);
        self.out.write_all(&len).map_err(io)?;
        self.out
            .write_all(&masked_crc(&len).to_le_bytes())
            .map_err(io)?;
        self.out.write_all(data).map_err(io)?;
        self.out
            .write_all(&masked_crc(data).to_le_bytes())
            .map_err(io)
    }

    pub fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()> {
        self.record(&scalar_event(now(), step as i64, tag, value as f32))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // CRC-32C of "123456789" is 0xe3069283 (RFC 3720); masking rotates and offsets it.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn varints_encode_little_endian_groups() {
        let mut out = Vec::new();
        varint(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
    }
}
