//! Data-parallel training under OpenMPI's `mpirun` (issue 13): N ranks take the steps one
//! process takes, write one run, stop together on SIGTERM, resume with any world size, end the
//! job when a rank dies, and train across two network namespaces as across two machines.
//!
//! These need kiln built with `--features mpi` and `mpirun` on the PATH (`.ci/run` installs
//! OpenMPI and runs `cargo test --features mpi --test mpi`); elsewhere each test prints a
//! SKIPPED line, and with `REQUIRE_MPI=1` fails instead.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::bin::{run_info, stderr, tensors, KILN, ROOT};

/// One mpirun at a time: two oversubscribed jobs on two cores would only slow each other.
static MPIRUN: Mutex<()> = Mutex::new(());

/// Whether this test can launch ranks; prints why not otherwise.
fn mpi_or_skip(test: &str) -> bool {
    let why = if !cfg!(feature = "mpi") {
        Some("kiln built without --features mpi".to_string())
    } else {
        match Command::new("mpirun").arg("--version").output() {
            Ok(o) if o.status.success() => None,
            _ => Some("no mpirun on the PATH (apt-get install openmpi-bin)".to_string()),
        }
    };
    let Some(why) = why else { return true };
    assert!(
        std::env::var("REQUIRE_MPI").as_deref() != Ok("1"),
        "{test}: REQUIRE_MPI=1 but {why}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

/// `mpirun -np N kiln ARGS` from the repository root (as root, oversubscribing 2 cores).
fn mpirun(np: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    .args(["-np", &np.to_string(), KILN])
    .args(args)
    .current_dir(ROOT);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("mpirun runs")
}

fn kiln(args: &[&str]) -> Output {
    Command::new(KILN)
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("kiln runs")
}

fn ok(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The largest difference between the tensors of two checkpoints with the same names.
fn max_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((f32::from_bits(*x) - f32::from_bits(*y)).abs());
        }
    }
    worst
}

/// The one checkpoint of a run.
fn checkpoint(run: &Path) -> PathBuf {
    let info = run_info(run);
    run.join(info["last_checkpoint"].as_str().expect("a checkpoint"))
}

/// Run folders under `runs` (not `latest`).
fn runs_in(runs: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "latest")
        .collect();
    names.sort();
    names
}

const THREE_STEPS: [&str; 5] = ["--set", "train.epochs=1", "--limit-batches", "3", "--quiet"];

#[test]
fn two_ranks_take_the_steps_one_process_takes_and_write_one_run() {
    if !mpi_or_skip("two_ranks_take_the_steps_one_process_takes_and_write_one_run") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let mut args = vec!["train", "configs/mnist_mlp.toml", "--run-dir", s(&single)];
    args.extend(THREE_STEPS);
    ok(&kiln(&args));
    // mnist_mlp has dropout: the ranks' masks are their rows' part of the global batch's.
    for np in [2, 3] {
        let runs = dir.path().join(format!("runs{np}"));
        let mut args = vec!["train", "configs/mnist_mlp.toml", "--runs", s(&runs)];
        args.extend(THREE_STEPS);
        args.pop(); // not quiet: the log says the ranks agree
        let o = run(mpirun(np, &args));
        ok(&o);
        let written = runs_in(&runs);
        assert_eq!(written.len(), 1, "{np} ranks wrote {written:?}");
        let parallel = runs.join(&written[0]);
        let diff = max_diff(&checkpoint(&single), &checkpoint(&parallel));
        eprintln!("{np} ranks: weights and Adam state after 3 steps within {diff:e}");
        assert!(diff <= 1e-5, "{np} ranks differ from one process by {diff}");
        assert_eq!(run_info(&parallel)["world_size"], np);
        let log = std::fs::read_to_string(parallel.join("train.log")).unwrap();
        assert!(
            log.contains("ranks agree: parameter checksum"),
            "no checksum line in {log}"
        );
        assert!(log.contains(&format!("data-parallel: {np} ranks, global batch 32")));
        // Only rank 0 prints: one run directory on stdout.
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    }
}

#[test]
fn two_ranks_reach_the_accuracy_of_one_process() {
    if !mpi_or_skip("two_ranks_reach_the_accuracy_of_one_process") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let accuracy = |o: Output| -> f64 {
        ok(&o);
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        v["test"]["accuracy"].as_f64().unwrap()
    };
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    let a1 = accuracy(kiln(&[
        "train",
        "configs/mnist_mlp.toml",
        "--json",
        "--quiet",
        "--run-dir",
        s(&one),
    ]));
    let a2 = accuracy(run(mpirun(
        2,
        &[
            "train",
            "configs/mnist_mlp.toml",
            "--json",
            "--quiet",
            "--run-dir",
            s(&two),
        ],
    )));
    eprintln!("mnist_mlp test accuracy: 1 process {a1}, 2 ranks {a2}");
    assert!((a1 - a2).abs() <= 0.005, "1 process {a1}, 2 ranks {a2}");
    assert!(a2 >= 0.92, "2 ranks reached only {a2}");
}

/// Start a long mnist_mlp run under mpirun and wait until its log shows `line`.
fn start_long_run(np: usize, run_dir: &Path, extra: &[&str], line: &str) -> Child {
    let mut args = vec![
        "train",
        "configs/mnist_mlp.toml",
        "--quiet",
        "--run-dir",
        s(run_dir),
        "--set",
        "train.epochs=200",
    ];
    args.extend(extra);
    let mut c = mpirun(np, &args);
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = run_dir.join("train.log");
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains(line)) {
        assert!(
            Instant::now() < deadline,
            "no '{line}' in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Wait for a child, at most `secs` seconds (then kill it and fail).
fn wait(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun did not end within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A long run on `np` ranks, sent SIGTERM in its second epoch: its output and run.json, which
/// must say `interrupted` at a mid-epoch checkpoint.
fn stop_mid_epoch(np: usize, run_dir: &Path) -> (Output, serde_json::Value) {
    let child = start_long_run(np, run_dir, &[], "epoch 2/200");
    // Mid-epoch: mpirun passes SIGTERM to every rank; they agree on the step to stop at.
    std::thread::sleep(Duration::from_millis(100));
    signal(child.id(), "-TERM");
    let o = wait(child, 60);
    let info = run_info(run_dir);
    assert_eq!(info["status"], "interrupted", "{info}");
    let ck = info["last_checkpoint"].as_str().unwrap();
    assert!(ck.contains("-step-"), "not a mid-epoch checkpoint: {ck}");
    (o, info)
}

#[test]
fn sigterm_checkpoints_once_and_the_run_resumes_on_any_world_size() {
    if !mpi_or_skip("sigterm_checkpoints_once_and_the_run_resumes_on_any_world_size") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let (o, info) = stop_mid_epoch(2, &run_dir);
    // OpenMPI's mpirun exits 1 for a job it ended on a signal; each rank exits 130.
    assert!(!o.status.success());
    let checkpoints = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .count();
    let done = info["epochs_done"].as_u64().unwrap();
    let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
    assert_eq!(log.matches("interrupted at epoch").count(), 1, "{log}");

    // 2 ranks -> 1 process: finish the interrupted epoch and one more.
    ok(&resume(1, &run_dir, done + 2));
    let info = run_info(&run_dir);
    assert_eq!(info["status"], "finished");
    assert_eq!(info["world_size"], 1);
    assert_eq!(info["epochs_done"].as_u64().unwrap(), done + 2);
    assert!(checkpoints >= 1);

    // 1 process -> 2 ranks.
    ok(&resume(2, &run_dir, done + 3));
    let info = run_info(&run_dir);
    assert_eq!(info["status"], "finished");
    assert_eq!(info["world_size"], 2);
    // Every epoch once in metrics.csv, in order.
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let epochs: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(epochs, (1..=done + 3).collect::<Vec<_>>());
}

/// `kiln train --resume RUN --set train.epochs=EPOCHS` in one process or under mpirun.
fn resume(np: usize, run_dir: &Path, epochs: u64) -> Output {
    let epochs = format!("train.epochs={epochs}");
    let args = ["train", "--resume", s(run_dir), "--quiet", "--set", &epochs];
    match np {
        1 => kiln(&args),
        np => run(mpirun(np, &args)),
    }
}

/// The pid of rank `rank` among mpirun's children.
fn rank_pid(mpirun: u32, rank: usize) -> u32 {
    let out = Command::new("pgrep")
        .args(["-P", &mpirun.to_string()])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return pid.parse().unwrap();
        }
    }
    panic!("no rank {rank} among mpirun {mpirun}'s children");
}

#[test]
fn a_killed_rank_ends_the_job_and_the_run_stays_resumable() {
    if !mpi_or_skip("a_killed_rank_ends_the_job_and_the_run_stays_resumable") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    // A checkpoint every epoch, so one exists when the rank dies.
    let every = ["--set", "train.checkpoint.every_seconds=0"];
    let child = start_long_run(2, &run_dir, &every, "epoch 2/200");
    let mpirun_pid = child.id();
    signal(rank_pid(mpirun_pid, 1), "-KILL");
    let o = wait(child, 60);
    assert!(!o.status.success(), "the job went on without rank 1");
    let said = stderr(&o);
    assert!(
        said.contains("rank 1"),
        "mpirun did not name the rank: {said}"
    );
    // Every file of the run is whole: run.json parses, every checkpoint loads.
    let info = run_info(&run_dir);
    assert!(info["last_checkpoint"].is_string(), "{info}");
    for e in std::fs::read_dir(run_dir.join("checkpoints")).unwrap() {
        let path = e.unwrap().path();
        kiln::run::checkpoint::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    // The run continues from its last checkpoint.
    ok(&resume(
        1,
        &run_dir,
        info["epochs_done"].as_u64().unwrap() + 1,
    ));
    assert_eq!(run_info(&run_dir)["status"], "finished");
}

/// Two network namespaces joined by a veth pair: two hosts on one machine. Removed on drop.
struct TwoHosts {
    names: [String; 2],
    addrs: [String; 2],
}

impl TwoHosts {
    fn make() -> Result<TwoHosts, String> {
        let id = std::process::id() % 200 + 20;
        let names = [format!("kiln-a{id}"), format!("kiln-b{id}")];
        let addrs = [format!("10.213.{id}.1"), format!("10.213.{id}.2")];
        let hosts = TwoHosts {
            names: names.clone(),
            addrs: addrs.clone(),
        };
        let (va, vb) = (format!("kva{id}"), format!("kvb{id}"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), names[0].clone()],
            vec!["netns".into(), "add".into(), names[1].clone()],
            ["link", "add", &va, "type", "veth", "peer", "name", &vb]
                .map(String::from)
                .to_vec(),
            ["link", "set", &va, "netns", &names[0]]
                .map(String::from)
                .to_vec(),
            ["link", "set", &vb, "netns", &names[1]]
                .map(String::from)
                .to_vec(),
        ];
        for step in &steps {
            ip(step)?;
        }
        for (ns, (dev, addr)) in names.iter().zip([(&va, &addrs[0]), (&vb, &addrs[1])]) {
            let cidr = format!("{addr}/24");
            ip(&["-n", ns, "addr", "add", &cidr, "dev", dev].map(String::from))?;
            ip(&["-n", ns, "link", "set", dev, "up"].map(String::from))?;
            ip(&["-n", ns, "link", "set", "lo", "up"].map(String::from))?;
        }
        Ok(hosts)
    }
}

fn ip(args: &[String]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if o.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr).trim()
    ))
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = ip(&["netns".into(), "delete".into(), ns.clone()]);
        }
    }
}

#[test]
fn two_network_namespaces_train_together_as_two_machines() {
    let test = "two_network_namespaces_train_together_as_two_machines";
    if !mpi_or_skip(test) {
        return;
    }
    let hosts = match TwoHosts::make() {
        Ok(h) => h,
        Err(why) => {
            // Namespaces need root (or CAP_NET_ADMIN) and iproute2.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: cannot make network namespaces ({why})"
            );
            return;
        }
    };
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // mpirun starts its daemon on the second host through this agent (as through ssh): it
    // enters that host's namespace, and leaves a mark that it did.
    let agent = dir.path().join("agent.sh");
    let marks = dir.path().join("launched");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\nhost=$1; shift\ncase $host in\n  {a}) ns={na};;\n  {b}) ns={nb};;\n  *) echo \"unknown host $host\" >&2; exit 1;;\nesac\necho \"$ns\" >> {marks}\nexec ip netns exec $ns sh -c \"$*\"\n",
            a = hosts.addrs[0],
            b = hosts.addrs[1],
            na = hosts.names[0],
            nb = hosts.names[1],
            marks = marks.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();

    let single = dir.path().join("single");
    let mut args = vec!["train", "configs/mnist_mlp.toml", "--run-dir", s(&single)];
    args.extend(THREE_STEPS);
    ok(&kiln(&args));

    let two = dir.path().join("two");
    let net = format!("{}/24", hosts.addrs[0]);
    let host_list = format!("{},{}", hosts.addrs[0], hosts.addrs[1]);
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &hosts.names[0],
        "mpirun",
        "--allow-run-as-root",
    ])
    .args(["--host", &host_list, "-np", "2"])
    .args(["--mca", "plm_rsh_agent", s(&agent)])
    .args(["--mca", "btl", "tcp,self"])
    .args(["--mca", "btl_tcp_if_include", &net])
    .args(["--mca", "oob_tcp_if_include", &net])
    .args([
        KILN,
        "train",
        "configs/mnist_mlp.toml",
        "--run-dir",
        s(&two),
    ])
    .args(THREE_STEPS)
    .current_dir(ROOT);
    let o = run(c);
    ok(&o);
    let launched = std::fs::read_to_string(&marks).unwrap_or_default();
    assert!(
        launched.contains(&hosts.names[1]),
        "rank 1 was not launched in the second namespace: {launched:?}"
    );
    let diff = max_diff(&checkpoint(&single), &checkpoint(&two));
    eprintln!("two namespaces over TCP: weights after 3 steps within {diff:e} of one process");
    assert!(diff <= 1e-5, "differ by {diff}");
    assert_eq!(run_info(&two)["world_size"], 2);
}

#[test]
fn two_ranks_stream_their_parts_of_a_file_deterministically() {
    if !mpi_or_skip("two_ranks_stream_their_parts_of_a_file_deterministically") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A plain file: each rank reads its byte range of it.
    let csv = dir.path().join("train.csv");
    mnist_csv(&csv, None);
    let train = format!("data.train=\"{}\"", csv.display());
    let mut last = None;
    for attempt in ["a", "b"] {
        let run_dir = dir.path().join(attempt);
        let o = run(mpirun(
            2,
            &[
                "train",
                "configs/mnist_mlp.toml",
                "--json",
                "--quiet",
                "--run-dir",
                s(&run_dir),
                "--set",
                "data.stream=true",
                "--set",
                &train,
            ],
        ));
        ok(&o);
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        let acc = v["test"]["accuracy"].as_f64().unwrap();
        eprintln!("streamed, 2 ranks: test accuracy {acc}");
        assert!(acc >= 0.92, "streamed under 2 ranks reached only {acc}");
        let weights = tensors(&run_dir.join("model.safetensors"));
        if let Some(before) = &last {
            assert!(
                before == &weights,
                "the same seed trained different weights"
            );
        }
        last = Some(weights);
    }
}

#[test]
fn a_run_stopped_mid_epoch_in_one_process_resumes_on_two_ranks() {
    if !mpi_or_skip("a_run_stopped_mid_epoch_in_one_process_resumes_on_two_ranks") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    // mpirun -np 1 is one process: its mid-epoch checkpoint holds the epoch's statistics so far.
    let (_, info) = stop_mid_epoch(1, &run_dir);
    let done = info["epochs_done"].as_u64().unwrap();
    ok(&resume(2, &run_dir, done + 1));
    let info = run_info(&run_dir);
    assert_eq!(info["status"], "finished");
    assert_eq!(info["world_size"], 2);
}

/// MNIST's training rows as a plain CSV, with the cell `(line, column)` replaced when given.
fn mnist_csv(path: &Path, bad: Option<(usize, usize)>) {
    use std::io::Read;
    let gz = std::fs::read(Path::new(ROOT).join("datasets/mnist/train.csv.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    if let Some((line, col)) = bad {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut cells: Vec<&str> = lines[line - 1].split(',').collect();
        cells[col] = "oops";
        lines[line - 1] = cells.join(",");
        text = lines.join("\n") + "\n";
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_bad_row_one_rank_streams_stops_every_rank_at_a_checkpoint() {
    if !mpi_or_skip("a_bad_row_one_rank_streams_stops_every_rank_at_a_checkpoint") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    // Line 7001 lies in the second half of the file: rank 1's part.
    mnist_csv(&csv, Some((7001, 3)));
    let run_dir = dir.path().join("run");
    let train = format!("data.train=\"{}\"", csv.display());
    let args = [
        "train",
        "configs/mnist_mlp.toml",
        "--quiet",
        "--run-dir",
        s(&run_dir),
        "--set",
        "data.stream=true",
        "--set",
        "data.shuffle_buffer=100",
        "--set",
        &train,
    ];
    let o = run(mpirun(2, &args));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains("error (rank 1 of 2): ") && said.contains("train.csv:7001"),
        "rank 1 did not name the row: {said}"
    );
    let info = run_info(&run_dir);
    assert_eq!(info["status"], "failed", "{info}");
    let ck = info["last_checkpoint"]
        .as_str()
        .expect("a checkpoint")
        .to_string();
    kiln::run::checkpoint::load(&run_dir.join(&ck)).unwrap();
    // Mended, the run goes on from that checkpoint.
    mnist_csv(&csv, None);
    ok(&resume(2, &run_dir, 5));
    assert_eq!(run_info(&run_dir)["status"], "finished");
}

#[test]
fn a_rank_that_cannot_read_its_data_stops_the_job_before_anything_is_written() {
    if !mpi_or_skip("a_rank_that_cannot_read_its_data_stops_the_job_before_anything_is_written") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = Path::new(ROOT).join("configs/iris.toml");
    // Rank 1 starts in a folder where the config's relative data path leads nowhere.
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe"])
        .args([
            "-np",
            "1",
            "-wdir",
            ROOT,
            KILN,
            "train",
            s(&config),
            "--quiet",
        ])
        .args(["--runs", s(&runs), ":"])
        .args([
            "-np",
            "1",
            "-wdir",
            s(&elsewhere),
            KILN,
            "train",
            s(&config),
        ])
        .args(["--quiet", "--runs", s(&runs)]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains("error (rank 1 of 2): datasets/iris/iris.csv"),
        "{said}"
    );
    assert!(
        said.contains("error: rank 1 of 2 could not go on"),
        "{said}"
    );
    assert!(!runs.exists(), "a run directory was made");
}

/// f16 loss scaling under two ranks: from a scale of 2^40 the all-reduced gradients overflow,
/// every rank sees the same ones, so all skip the same steps (the closing checksum check would
/// fail otherwise) and the run finishes.
#[test]
fn ranks_skip_overflowing_f16_steps_together() {
    if !mpi_or_skip("ranks_skip_overflowing_f16_steps_together") {
        return;
    }
    let _one = MPIRUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let o = run(mpirun(
        2,
        &[
            "train",
            "configs/mnist_mlp.toml",
            "--run-dir",
            s(&run_dir),
            "--precision",
            "f16",
            "--set",
            "train.loss_scale={init_scale=1099511627776}",
            "--set",
            "train.epochs=1",
            "--limit-batches",
            "40",
            "--threads",
            "1",
        ],
    ));
    ok(&o);
    let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
    let skipped = log.matches("step skipped").count();
    assert!(skipped >= 15, "{skipped} skipped steps:\n{log}");
    assert!(log.contains("ranks agree: parameter checksum"), "{log}");
}
