//! What this machine can hold, so models and data that cannot fit are refused with a message
//! before anything is allocated (an allocation that fails aborts the process).

use std::sync::OnceLock;

/// Physical memory in bytes (Linux: `MemTotal` of /proc/meminfo); `u64::MAX` where unknown.
pub fn memory_bytes() -> u64 {
    static TOTAL: OnceLock<u64> = OnceLock::new();
    *TOTAL.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(u64::MAX, |kib| kib.saturating_mul(1024))
    })
}

/// Bytes in a short human form: `2.9 PiB`, `24.0 GiB`, `512 B`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Ok when `bytes` fit in this machine's memory; else what they need against what it has.
pub fn fits(bytes: u128) -> Result<(), String> {
    let have = memory_bytes();
    if bytes <= have as u128 {
        return Ok(());
    }
    Err(format!(
        "needs {} but this machine has {} of memory",
        human_bytes(bytes),
        human_bytes(have as u128)
    ))
}
