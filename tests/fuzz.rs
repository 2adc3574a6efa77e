//! Property tests of the readers of untrusted input — the config, CSV and safetensors readers:
//! valid inputs mutated at random (bit flips, bytes inserted, deleted and repeated, cuts,
//! special tokens spliced in) must give a value or an error, never a panic or a hang. Each
//! reader runs for `KILN_FUZZ_SECONDS` (default 1; `.ci/run` gives more), from a fixed seed so a
//! failure can be replayed: the failing input is printed.

use std::io::Read;
use std::time::{Duration, Instant};

use kiln::Rng;

fn budget() -> Duration {
    let secs = std::env::var("KILN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// Tokens that have broken readers elsewhere: quotes, separators, huge and odd numbers,
/// non-UTF-8 bytes, TOML and JSON syntax.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b",",
    b"\n",
    b"\r\n",
    b"\0",
    b"\xff\xfe",
    b"\xc3",
    b"nan",
    b"inf",
    b"-0",
    b"1e39",
    b"99999999999999999999",
    b"-1",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b"=",
    b"[",
    b"'''",
    b"\"\"\"",
    b"#",
    b"\\u0000",
    b"NA",
    b"?",
    b"\xef\xbb\xbf",
];

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, (rng.next_u64() & 0xff) as u8),
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            3 => v.truncate(at),
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            5 if at < v.len() => {
                // Repeat a piece: long lines, many columns.
                let end = (at + 1 + rng.below(32)).min(v.len());
                let piece = v[at..end].to_vec();
                for _ in 0..rng.below(64) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            _ => {}
        }
    }
    v
}

/// Run `read` on mutations of each seed for the time budget; a panic fails with the input.
fn fuzz(what: &str, seeds: &[Vec<u8>], read: impl Fn(&[u8])) -> usize {
    let mut rng = Rng::new(7);
    let deadline = Instant::now() + budget();
    let mut n = 0;
    while Instant::now() < deadline {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, &mut rng);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&input)));
        assert!(
            ok.is_ok(),
            "{what}: the reader panicked on input {:?}",
            String::from_utf8_lossy(&input)
        );
        n += 1;
    }
    eprintln!("{what}: {n} mutated inputs");
    n
}

fn quiet_panics() {
    // The harness prints every caught panic otherwise; a failure still reports the input.
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn the_config_reader_never_panics() {
    let seeds: Vec<Vec<u8>> = [
        "configs/mnist_mlp.toml",
        "configs/mnist_cnn.toml",
        "configs/iris.toml",
    ]
    .iter()
    .map(|p| std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap())
    .collect();
    quiet_panics();
    let n = fuzz("config", &seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = kiln::config::parse(&text, "fuzz.toml", &["train.epochs=2".into()]);
    });
    assert!(n > 0);
}

#[test]
fn the_csv_reader_never_panics() {
    let seeds = vec![
        b"a,b,label\n1,2,x\n3,4.5,y\n-1,NA,x\n".to_vec(),
        b"\"q,uoted\",b,label\n\"1\n2\",3,x\r\n4,5,y\r\n".to_vec(),
        b"px0,px1,px2,label\n0,255,17,3\n9,9,9,1\n".to_vec(),
    ];
    quiet_panics();
    let n = fuzz("csv", &seeds, |bytes| {
        let input: Box<dyn Read> = Box::new(std::io::Cursor::new(bytes.to_vec()));
        let mut rdr = kiln::data::csv::reader(input, "fuzz.csv");
        let Ok(header) = rdr.header() else { return };
        let cols: Vec<usize> = (0..header.len().saturating_sub(1)).collect();
        let target = header.len().checked_sub(1);
        let _ = rdr.read_rows(&header, &cols, target, usize::MAX);
    });
    assert!(n > 0);
}

#[test]
fn the_safetensors_reader_never_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let seeds = vec![
        std::fs::read(dir.join("golden_loss.safetensors")).unwrap(),
        std::fs::read(dir.join("golden_cnn.safetensors")).unwrap(),
    ];
    quiet_panics();
    let n = fuzz("safetensors", &seeds, |bytes| {
        let _ = kiln::run::checkpoint::from_bytes(bytes, "fuzz.safetensors");
    });
    assert!(n > 0);
}
