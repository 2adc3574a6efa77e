//! `train.precision` and f16 loss scaling through the binary, on the CPU's emulation: accuracy
//! in bf16, an f16 run that overflows and recovers by scaling, bit-exact resume of the scaler,
//! checkpoints that move between precisions, and the config's checks.

mod common;

use std::path::Path;

use common::bin::*;

/// mnist_mlp's first `batches` batches a epoch with extra arguments, into `run_dir`.
fn mlp(run_dir: &Path, batches: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--threads", "1", "--limit-batches", batches];
    args.extend_from_slice(extra);
    train_shipped("configs/mnist_mlp.toml", run_dir, &args)
}

/// 2^40: the gradients of mnist_mlp's loss times this overflow f16 in the first products of the
/// backward pass (cross-entropy's dlogits are about 0.1/32, so about 3·10^9 > 65504).
const HUGE_SCALE: &str = "train.loss_scale={init_scale=1099511627776, growth_interval=10}";

#[test]
fn mnist_mlp_in_bf16_reaches_the_accuracy_floor() {
    let dir = tempfile::tempdir().unwrap();
    let out = train_shipped(
        "configs/mnist_mlp.toml",
        &dir.path().join("run"),
        &["--json", "--precision", "bf16"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    eprintln!("mnist_mlp bf16 (CPU emulation): test accuracy {acc}");
    assert!(acc >= 0.93, "test accuracy {acc}");
    let log = std::fs::read_to_string(dir.path().join("run/train.log")).unwrap();
    assert!(
        log.contains("precision bf16: matrix products take bf16 operands"),
        "{log}"
    );
    assert!(log.contains("is an emulation"), "{log}");
    let config = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(config.contains("precision = \"bf16\""), "{config}");
}

#[test]
fn an_f16_run_that_overflows_skips_steps_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = mlp(
        &run,
        "100",
        &[
            "--precision",
            "f16",
            "--set",
            HUGE_SCALE,
            "--set",
            "train.epochs=1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    let skipped = log.matches("step skipped").count();
    // From 2^40 the scale must halve about 20 times before the gradients fit f16 (to 2^20 or
    // below); every halving is a skipped step, and the run goes on to learn.
    assert!(skipped >= 15, "{skipped} skipped steps:\n{log}");
    assert!(
        log.contains("scale 1.099511627776e12 -> 5.49755813888e11"),
        "{log}"
    );
    assert!(log.contains("clean steps"), "the scale grows again:\n{log}");
    let acc = log
        .lines()
        .find_map(|l| l.split("train_accuracy ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap();
    assert!(
        acc > 0.3,
        "it learned after the skips (chance is 0.1): train accuracy {acc}\n{log}"
    );
    for (name, bits) in tensors(&run.join("checkpoints/epoch-0001.safetensors")) {
        assert!(
            bits.iter().all(|b| f32::from_bits(*b).is_finite()),
            "{name}"
        );
    }
}

#[test]
fn a_resumed_f16_run_scales_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let f16 = ["--precision", "f16", "--set", HUGE_SCALE];
    let straight = dir.path().join("straight");
    let out = mlp(
        &straight,
        "40",
        &[&f16[..], &["--set", "train.epochs=2"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let cut = dir.path().join("cut");
    let out = mlp(
        &cut,
        "40",
        &[&f16[..], &["--set", "train.epochs=1"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The scaler's state rides in the checkpoint: a resume that started it afresh would skip
    // its first 20 steps again.
    let resumed = kiln(
        Path::new(ROOT),
        &[
            "train",
            "--resume",
            cut.to_str().unwrap(),
            "--set",
            "train.epochs=2",
            "--threads",
            "1",
            "--quiet",
        ],
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let ck = "checkpoints/epoch-0002.safetensors";
    assert_eq!(tensors(&straight.join(ck)), tensors(&cut.join(ck)));
}

#[test]
fn checkpoints_move_between_precisions() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = mlp(
        &run,
        "20",
        &["--precision", "f16", "--set", "train.epochs=1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // f16 → bf16 → f32 → f16: each resume trains on from the f32 checkpoint; the scaler is
    // dropped outside f16 and starts afresh when f16 comes back.
    for (epochs, precision) in [("2", "bf16"), ("3", "f32"), ("4", "f16")] {
        let out = kiln(
            Path::new(ROOT),
            &[
                "train",
                "--resume",
                run.to_str().unwrap(),
                "--set",
                &format!("train.epochs={epochs}"),
                "--precision",
                precision,
                "--threads",
                "1",
                "--quiet",
            ],
        );
        assert!(out.status.success(), "{precision}: {}", stderr(&out));
    }
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert_eq!(
        log.matches("dynamic loss scale 6.5536e4").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("precision bf16:").count(), 1, "{log}");
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 5, "a header and four epochs:\n{rows}");
}

#[test]
fn precision_keys_are_checked_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--set", "train.precision=\"fp16\""], "train.precision"),
        (
            &["--set", "train.loss_scale={init_scale=65536}"],
            "train.loss_scale: loss scaling is for train.precision = \"f16\"",
        ),
        (
            &[
                "--precision",
                "f16",
                "--set",
                "train.loss_scale={init_scale=1000}",
            ],
            "train.loss_scale.init_scale: must be a power of two",
        ),
        (
            &[
                "--precision",
                "f16",
                "--set",
                "train.loss_scale={growth_interval=0}",
            ],
            "train.loss_scale.growth_interval: must be at least 1",
        ),
        (
            &["--set", "train.cuda_graphs=true"],
            "train.cuda_graphs: whole-step CUDA graph capture is not built yet",
        ),
    ];
    for (i, (args, message)) in cases.iter().enumerate() {
        let out = mlp(&dir.path().join(format!("r{i}")), "1", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(line.contains(message), "{args:?}: {line}");
        assert!(
            line.contains("--set") || line.contains("mnist_mlp.toml"),
            "a place: {line}"
        );
    }
    let out = mlp(&dir.path().join("flag"), "1", &["--precision", "fp8"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = mlp(
        &dir.path().join("both"),
        "1",
        &["--precision", "bf16", "--set", "train.precision=\"f16\""],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(first_error_line(&out).contains("give one"));
}
