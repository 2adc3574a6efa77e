//! The event files a run writes, read back independently of the writer: every record's framing
//! and masked CRC-32C, then the Event protobufs decoded to (tag, step, value).

mod common;

use std::path::Path;

use common::bin::*;

/// TensorBoard's masked CRC-32C, computed here from the spec: rotate right 15, add a constant.
fn masked(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[*at];
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// (field number, wire type, payload) of each field of a protobuf message.
fn fields(msg: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < msg.len() {
        let key = varint(msg, &mut at);
        let (field, wire) = (key >> 3, key & 7);
        let payload = match wire {
            0 => varint(msg, &mut at).to_le_bytes().to_vec(),
            1 => {
                at += 8;
                msg[at - 8..at].to_vec()
            }
            2 => {
                let n = varint(msg, &mut at) as usize;
                at += n;
                msg[at - n..at].to_vec()
            }
            5 => {
                at += 4;
                msg[at - 4..at].to_vec()
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((field, wire, payload));
    }
    out
}

/// Every record of an event file, framing and CRCs checked, decoded as scalars; the first
/// record must be the file version.
fn scalars(path: &Path) -> Vec<(String, i64, f32)> {
    let bytes = std::fs::read(path).unwrap();
    let (mut at, mut out, mut first) = (0, Vec::new(), true);
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
            masked(len_bytes),
            "length CRC"
        );
        let data = &bytes[at + 12..at + 12 + len];
        assert_eq!(
            u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()),
            masked(data),
            "data CRC"
        );
        at += 16 + len;
        let event = fields(data);
        let step = event
            .iter()
            .find(|f| f.0 == 2)
            .map_or(0, |f| i64::from_le_bytes(f.2[..8].try_into().unwrap()));
        assert!(
            event.iter().any(|f| f.0 == 1 && f.1 == 1),
            "wall_time present"
        );
        if first {
            assert_eq!(
                event.iter().find(|f| f.0 == 3).map(|f| f.2.clone()),
                Some(b"brain.Event:2".to_vec())
            );
            first = false;
            continue;
        }
        let summary = &event.iter().find(|f| f.0 == 5).expect("a summary").2;
        for value in fields(summary).into_iter().filter(|f| f.0 == 1) {
            let v = fields(&value.2);
            let tag = String::from_utf8(v.iter().find(|f| f.0 == 1).unwrap().2.clone()).unwrap();
            let x = f32::from_le_bytes(
                v.iter().find(|f| f.0 == 2).unwrap().2[..4]
                    .try_into()
                    .unwrap(),
            );
            out.push((tag, step, x));
        }
    }
    out
}

fn event_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("events.out.tfevents."));
    files[0].clone()
}

#[test]
fn a_run_writes_train_and_valid_event_files_with_its_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mlp");
    let out = train_shipped(
        "configs/mnist_mlp.toml",
        &run,
        &[
            "--set",
            "train.epochs=2",
            "--set",
            "data.valid_split=0.1",
            "--set",
            "train.log_every_steps=100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let train = scalars(&event_file(&run.join("tensorboard/train")));
    let valid = scalars(&event_file(&run.join("tensorboard/valid")));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for (epoch, line) in csv.lines().skip(1).enumerate() {
        let row: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()] as f32;
        let at = |events: &[(String, i64, f32)], tag: &str| {
            events
                .iter()
                .find(|(t, s, _)| t == tag && *s == epoch as i64 + 1)
                .map(|e| e.2)
                .unwrap_or_else(|| panic!("{tag} at epoch {}", epoch + 1))
        };
        assert_eq!(at(&train, "epoch_loss"), col("train_loss"));
        assert_eq!(at(&train, "epoch_accuracy"), col("train_accuracy"));
        assert_eq!(at(&train, "epoch_lr"), col("lr"));
        assert!(at(&train, "epoch_samples_per_sec") > 0.0);
        assert_eq!(at(&valid, "epoch_loss"), col("valid_loss"));
        assert_eq!(at(&valid, "epoch_accuracy"), col("valid_accuracy"));
    }
    // 7,200 rows at batch 32: 225 steps per epoch, the loss every 100 steps.
    let steps: Vec<i64> = train
        .iter()
        .filter(|e| e.0 == "batch_loss")
        .map(|e| e.1)
        .collect();
    assert_eq!(steps, [100, 200, 300, 400]);
    assert!(train
        .iter()
        .filter(|e| e.0 == "batch_loss")
        .all(|e| e.2.is_finite() && e.2 > 0.0));
}

#[test]
fn plots_are_pngs_of_the_expected_size() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mlp");
    let out = train_shipped(
        "configs/mnist_mlp.toml",
        &run,
        &["--set", "train.epochs=2", "--set", "data.valid_split=0.1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let size = |name: &str| {
        image::image_dimensions(run.join("plots").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(size("learning_curves.png"), (920, 340)); // loss and accuracy panels
    assert_eq!(size("confusion-test.png"), (650, 690)); // 10 classes of 56 px, 1-char names
    let plots_before = std::fs::read_dir(run.join("plots")).unwrap().count();
    let out = kiln(
        dir.path(),
        &["eval", "mlp", "--split", "valid", "--plot", "valid.png"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let drawn = image::image_dimensions(dir.path().join("valid.png")).unwrap();
    assert_eq!(drawn, (650, 690));
    let plots_after = std::fs::read_dir(run.join("plots")).unwrap().count();
    assert_eq!(
        plots_after, plots_before,
        "eval leaves the run's plots alone"
    );

    let lin = dir.path().join("lin");
    assert!(
        train_shipped("configs/linreg.toml", &lin, &["--set", "train.epochs=50"])
            .status
            .success()
    );
    assert_eq!(
        image::image_dimensions(lin.join("plots/fit.png")).unwrap(),
        (640, 480)
    );
    assert_eq!(
        image::image_dimensions(lin.join("plots/learning_curves.png")).unwrap(),
        (1380, 340)
    );
}
