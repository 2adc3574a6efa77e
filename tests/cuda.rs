//! The CUDA backend. Everywhere: the kernel sources compile with NVRTC (when libnvrtc is present,
//! or always with REQUIRE_NVRTC=1) and asking for CUDA without it is a clear error. On a GPU:
//! every op's forward and backward against the CPU's, the optimizers, dropout masks, training
//! to the accuracy floors, and checkpoints moving between devices.

mod common;

use std::ffi::CString;

use common::bin::{first_error_line, kiln, stderr, stdout, train_shipped};
use common::{away_from_zero, cuda_or_skip, distinct, tensor, uniform};
use kiln::backend::cuda::{compile_options, KERNEL_FILES};
use kiln::ops::{pool::Pool, reduce::Reduce, unary::Unary};
use kiln::optim::{Optimizer, OptimizerKind};
use kiln::{Device, Rng, Tensor};

// ---- everywhere ---------------------------------------------------------------------------

/// Compile every kernel file for sm_90 (so ptxas checks register and shared-memory limits) with
/// the options used at run time.
#[test]
fn every_kernel_compiles_with_nvrtc() {
    use cudarc::nvrtc::result;
    // SAFETY: only tries to dlopen libnvrtc by its usual names.
    let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    if !present {
        assert!(
            std::env::var("REQUIRE_NVRTC").as_deref() != Ok("1"),
            "REQUIRE_NVRTC=1 but libnvrtc cannot be loaded (set LD_LIBRARY_PATH)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED every_kernel_compiles_with_nvrtc: libnvrtc not found (REQUIRE_NVRTC=1 makes this a failure)"
        );
        return;
    }
    let options = compile_options("sm_90");
    for f in KERNEL_FILES {
        let src = CString::new(f.source()).unwrap();
        let name = CString::new(f.file).unwrap();
        let prog = result::create_program(&src, Some(&name)).expect("nvrtc program");
        // SAFETY: `prog` is a live program; options are plain strings.
        let compiled = unsafe { result::compile_program(prog, &options) };
        let log = unsafe { result::get_program_log(prog) }.unwrap_or_default();
        let log: String = log
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        unsafe { result::destroy_program(prog) }.unwrap();
        assert!(
            compiled.is_ok(),
            "{} does not compile with {options:?}:\n{log}",
            f.file
        );
        assert!(
            !log.contains("warning"),
            "{}: compiler warnings:\n{log}",
            f.file
        );
    }
}

#[test]
fn asking_for_cuda_without_it_is_a_clear_error() {
    if kiln::backend::cuda::driver_present() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED asking_for_cuda_without_it_is_a_clear_error: this machine has a CUDA driver"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = train_shipped(
        "configs/linreg.toml",
        &dir.path().join("run"),
        &["--device", "cuda"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = first_error_line(&out);
    assert!(
        line.contains("--device cuda") && line.contains("libcuda"),
        "error names the flag and what is missing: {line}"
    );
    assert!(
        !dir.path().join("run").exists(),
        "no run directory is left behind"
    );
    // auto falls back to the CPU and trains.
    let out = train_shipped(
        "configs/linreg.toml",
        &dir.path().join("auto"),
        &["--device", "auto"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(dir.path().join("auto/train.log")).unwrap();
    assert!(
        log.contains("device: cpu") && log.contains("no NVIDIA driver"),
        "{log}"
    );
    // A device spelled wrong is a usage error.
    let out = kiln(dir.path(), &["train", "x.toml", "--device", "gpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

// ---- on a GPU: each op against the CPU --------------------------------------------------

/// `|cuda − cpu| ≤ tol + |cpu|·eps` element by element.
fn assert_near(what: &str, cuda: &[f32], cpu: &[f32], tol: f32, eps: f32) {
    assert_eq!(cuda.len(), cpu.len(), "{what}: length");
    for (i, (&g, &r)) in cuda.iter().zip(cpu).enumerate() {
        assert!(
            (g - r).abs() <= tol + r.abs() * eps || (g.is_nan() && r.is_nan()),
            "{what}: element {i}: CUDA {g}, CPU {r}"
        );
    }
}

/// Run `f` on the same inputs on both devices; compare the outputs, then the gradients of
/// `Σ w·f(inputs)` for fixed random weights `w`.
fn compare(what: &str, inputs: &[(Vec<f32>, Vec<usize>)], f: impl Fn(&[Tensor]) -> Tensor) {
    compare_tol(what, inputs, 1e-5, 1e-5, f)
}

fn compare_tol(
    what: &str,
    inputs: &[(Vec<f32>, Vec<usize>)],
    tol: f32,
    eps: f32,
    f: impl Fn(&[Tensor]) -> Tensor,
) {
    let run = |device: Device| {
        let leaves: Vec<Tensor> = inputs
            .iter()
            .map(|(v, d)| tensor(v.clone(), d).to_device(device).with_requires_grad())
            .collect();
        let y = f(&leaves);
        assert_eq!(y.device(), device, "{what}: output device");
        let w = tensor(uniform(y.numel(), -1.0, 1.0, &mut Rng::new(7)), y.dims());
        y.mul(&w.to_device(device)).sum_all().backward();
        let grads: Vec<Vec<f32>> = leaves
            .iter()
            .map(|t| t.grad().map_or_else(Vec::new, |g| g.to_vec()))
            .collect();
        (y.to_vec(), grads)
    };
    let (cpu_y, cpu_g) = run(Device::Cpu);
    let (gpu_y, gpu_g) = run(Device::Cuda);
    assert_near(&format!("{what} forward"), &gpu_y, &cpu_y, tol, eps);
    for (i, (g, c)) in gpu_g.iter().zip(&cpu_g).enumerate() {
        assert_near(&format!("{what} grad of input {i}"), g, c, tol, eps);
    }
}

fn random(dims: &[usize], seed: u64) -> (Vec<f32>, Vec<usize>) {
    let n = dims.iter().product();
    (away_from_zero(n, &mut Rng::new(seed)), dims.to_vec())
}

/// The op tests' shapes, and one large enough for the backends' parallel paths.
fn shapes() -> impl Iterator<Item = &'static [usize]> {
    common::SHAPES.iter().copied().chain([&[300, 257][..]])
}

#[test]
fn unary_ops_match_the_cpu() {
    if !cuda_or_skip("unary_ops_match_the_cpu") {
        return;
    }
    for &op in Unary::ALL {
        for (k, dims) in shapes().enumerate() {
            let (mut v, d) = random(dims, k as u64);
            if matches!(op, Unary::Log | Unary::Sqrt | Unary::Pow(_)) {
                v.iter_mut().for_each(|x| *x = x.abs());
            }
            // Transcendentals differ from the CPU's libm by a few ulps.
            compare_tol(&format!("{op:?} {dims:?}"), &[(v, d)], 1e-6, 4e-6, |t| {
                t[0].unary(op)
            });
        }
    }
}

#[test]
fn binary_ops_match_the_cpu_under_every_broadcast() {
    if !cuda_or_skip("binary_ops_match_the_cpu_under_every_broadcast") {
        return;
    }
    for &op in kiln::ops::binary::Binary::ALL {
        for (k, (a, b)) in common::BROADCASTS.iter().enumerate() {
            let inputs = [random(a, 2 * k as u64), random(b, 2 * k as u64 + 1)];
            compare(&format!("{op:?} {a:?} {b:?}"), &inputs, |t| {
                t[0].binary(op, &t[1])
            });
        }
    }
}

#[test]
fn reductions_match_the_cpu() {
    if !cuda_or_skip("reductions_match_the_cpu") {
        return;
    }
    let mut rng = Rng::new(3);
    // The op tests' shapes, and long axes for the block-per-output kernel.
    let long: [&[usize]; 2] = [&[2, 600, 3], &[1000]];
    for dims in common::REDUCE_SHAPES.iter().copied().chain(long) {
        let n: usize = dims.iter().product();
        let input = [(distinct(n, &mut rng), dims.to_vec())];
        for op in [Reduce::Sum, Reduce::Mean, Reduce::Max] {
            for axis in 0..dims.len() {
                for keepdim in [false, true] {
                    compare_tol(
                        &format!("{op:?} axis {axis} keepdim {keepdim} of {dims:?}"),
                        &input,
                        1e-4,
                        1e-5,
                        |t| t[0].reduce(op, axis, keepdim),
                    );
                }
            }
            compare_tol(
                &format!("{op:?} of all {dims:?}"),
                &input,
                1e-3,
                1e-5,
                |t| t[0].reduce_all(op),
            );
        }
    }
}

#[test]
fn bias_relu_matches_the_cpu() {
    if !cuda_or_skip("bias_relu_matches_the_cpu") {
        return;
    }
    for (dims, axis) in [
        (vec![7usize, 5], 1),
        (vec![2, 3, 4, 5], 1),
        (vec![64, 32, 30], 1),
    ] {
        let c = dims[axis];
        compare_tol(
            &format!("bias_relu {dims:?}"),
            &[random(&dims, 12), random(&[c], 13)],
            1e-5,
            1e-5,
            |t| t[0].bias_relu(&t[1], axis),
        );
    }
}

#[test]
fn softmax_matches_the_cpu() {
    if !cuda_or_skip("softmax_matches_the_cpu") {
        return;
    }
    for dims in [vec![7usize, 5], vec![3, 1, 4], vec![2, 3, 4, 5]] {
        let input = [random(&dims, 11)];
        for axis in 0..dims.len() {
            compare(&format!("softmax axis {axis} {dims:?}"), &input, |t| {
                t[0].softmax(axis)
            });
            compare(&format!("log_softmax axis {axis} {dims:?}"), &input, |t| {
                t[0].log_softmax(axis)
            });
        }
    }
}

#[test]
fn matmul_matches_the_cpu() {
    if !cuda_or_skip("matmul_matches_the_cpu") {
        return;
    }
    // cuBLAS adds in another order than gemm: compare at a tolerance for sums of ~k terms.
    let cases: &[(&[usize], &[usize], bool, bool)] = &[
        (&[7, 5], &[5, 3], false, false),
        (&[5, 7], &[5, 3], true, false),
        (&[7, 5], &[3, 5], false, true),
        (&[5, 7], &[3, 5], true, true),
        (&[1, 1], &[1, 1], false, false),
        (&[4, 7, 5], &[4, 5, 3], false, false),
        (&[4, 5, 7], &[4, 3, 5], true, true),
        (&[2, 3, 7, 5], &[5, 6], false, false),
        (&[2, 3, 7, 5], &[6, 5], false, true),
        (&[64, 784], &[128, 784], false, true),
        (&[7, 5], &[4, 5, 3], false, false),
        (&[5, 7], &[4, 3, 5], true, true),
        (&[4, 5, 7], &[5, 3], true, false),
    ];
    for (k, &(a, b, ta, tb)) in cases.iter().enumerate() {
        let inputs = [random(a, 20 + k as u64), random(b, 40 + k as u64)];
        compare_tol(
            &format!("matmul {a:?} {b:?} {ta} {tb}"),
            &inputs,
            1e-4,
            1e-4,
            |t| t[0].matmul_t(&t[1], ta, tb),
        );
    }
}

#[test]
fn convolution_and_pooling_match_the_cpu() {
    if !cuda_or_skip("convolution_and_pooling_match_the_cpu") {
        return;
    }
    // (input, weight, stride, padding)
    type Case<'a> = (&'a [usize], &'a [usize], (usize, usize), (usize, usize));
    let convs: &[Case] = &[
        (&[2, 3, 9, 8], &[4, 3, 3, 3], (1, 1), (0, 0)),
        (&[1, 1, 7, 7], &[2, 1, 3, 2], (2, 1), (1, 1)),
        (&[3, 2, 6, 5], &[5, 2, 1, 1], (1, 1), (0, 0)),
        (&[2, 4, 11, 10], &[3, 4, 5, 3], (2, 3), (2, 1)),
    ];
    for (k, &(x, w, stride, pad)) in convs.iter().enumerate() {
        let inputs = [
            random(x, 60 + k as u64),
            random(w, 70 + k as u64),
            random(&[w[0]], 80),
        ];
        compare_tol(
            &format!("conv2d {x:?} {w:?} {stride:?} {pad:?}"),
            &inputs,
            1e-4,
            1e-4,
            |t| t[0].conv2d(&t[1], Some(&t[2]), stride, pad),
        );
        compare_tol(
            &format!("conv2d_bias_relu {x:?} {w:?} {stride:?} {pad:?}"),
            &inputs,
            1e-4,
            1e-4,
            |t| t[0].conv2d_bias_relu(&t[1], &t[2], stride, pad),
        );
    }
    let mut rng = Rng::new(5);
    for (dims, kernel, stride) in [
        (vec![2usize, 3, 8, 8], (2, 2), (2, 2)),
        (vec![1, 2, 7, 9], (3, 3), (2, 2)),
        (vec![2, 1, 6, 7], (3, 2), (1, 1)),
    ] {
        let n = dims.iter().product();
        let input = [(distinct(n, &mut rng), dims.clone())];
        for kind in [Pool::Max, Pool::Avg] {
            compare(
                &format!("{kind:?} pool {dims:?} {kernel:?} {stride:?}"),
                &input,
                |t| t[0].pool2d(kind, kernel, stride),
            );
        }
    }
}

#[test]
fn layout_ops_match_the_cpu() {
    if !cuda_or_skip("layout_ops_match_the_cpu") {
        return;
    }
    let x = [random(&[2, 3, 4, 5], 90)];
    for perm in [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [0, 2, 3, 1],
        [1, 0, 3, 2],
        [0, 3, 1, 2],
    ] {
        compare(&format!("permute {perm:?}"), &x, |t| t[0].permute(&perm));
    }
    compare("transpose", &x, |t| t[0].transpose(1, 3));
    compare("reshape", &x, |t| t[0].reshape([6, 20]).mul_scalar(2.0));
    for axis in 0..4 {
        compare(&format!("narrow axis {axis}"), &x, |t| {
            t[0].narrow(axis, 1, 1)
        });
    }
    compare("index_select with repeats", &[random(&[6, 4], 91)], |t| {
        t[0].index_select(&[5, 0, 5, 2, 2, 2])
    });
    for axis in 0..3 {
        let mut a = vec![2usize, 3, 4];
        let mut b = a.clone();
        a[axis] = 1;
        b[axis] = 5;
        compare(
            &format!("cat axis {axis}"),
            &[random(&a, 92), random(&b, 93), random(&a, 94)],
            |t| Tensor::cat(t, axis),
        );
    }
}

#[test]
fn losses_match_the_cpu() {
    if !cuda_or_skip("losses_match_the_cpu") {
        return;
    }
    let targets: Vec<f32> = [3.0, 0.0, 4.0, 4.0, 1.0, 2.0, 0.0].to_vec();
    let labels = tensor(targets, &[7]);
    compare("cross_entropy", &[random(&[7, 5], 95)], |t| {
        t[0].cross_entropy(&labels.to_device(t[0].device()))
    });
    let target = tensor(uniform(35, -1.0, 1.0, &mut Rng::new(96)), &[7, 5]);
    compare("mse", &[random(&[7, 5], 97)], |t| {
        t[0].mse(&target.to_device(t[0].device()))
    });
}

#[test]
fn optimizer_steps_match_the_cpu() {
    if !cuda_or_skip("optimizer_steps_match_the_cpu") {
        return;
    }
    let kinds = [
        (
            OptimizerKind::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            0.1,
            0.01,
        ),
        (
            OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            0.1,
            0.0,
        ),
        (
            OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            0.05,
            1e-3,
        ),
        (
            OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            1e-2,
            0.0,
        ),
        (
            OptimizerKind::Adamw {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            1e-2,
            0.01,
        ),
    ];
    let (p0, _) = random(&[1000], 98);
    for (kind, lr, wd) in kinds {
        let run = |device: Device| {
            let p = tensor(p0.clone(), &[1000])
                .to_device(device)
                .with_requires_grad();
            let mut opt = Optimizer::new(kind, wd, vec![("p".into(), p.clone())]);
            for step in 0..3 {
                opt.zero_grad();
                let g = tensor(uniform(1000, -1.0, 1.0, &mut Rng::new(step)), &[1000]);
                p.mul(&g.to_device(device)).sum_all().backward();
                opt.step(lr);
            }
            let state: Vec<Vec<f32>> = opt.state().iter().map(|(_, t)| t.to_vec()).collect();
            (p.to_vec(), state)
        };
        let (cpu, cpu_state) = run(Device::Cpu);
        let (gpu, gpu_state) = run(Device::Cuda);
        assert_near(&format!("{kind:?} weights"), &gpu, &cpu, 1e-6, 1e-6);
        for (g, c) in gpu_state.iter().zip(&cpu_state) {
            assert_near(&format!("{kind:?} state"), g, c, 1e-6, 1e-6);
        }
    }
}

#[test]
fn dropout_masks_are_the_same_on_both_devices() {
    if !cuda_or_skip("dropout_masks_are_the_same_on_both_devices") {
        return;
    }
    for (len, rate, seed, first) in [
        (1usize, 0.5f32, 1u64, 0u64),
        (1000, 0.2, 42, 0),
        (100_003, 0.7, u64::MAX, 0),
        (777, 0.3, 9, 1 << 33),
    ] {
        let cpu = kiln::Storage::dropout_mask(Device::Cpu, len, rate, seed, first).to_vec();
        let gpu = kiln::Storage::dropout_mask(Device::Cuda, len, rate, seed, first).to_vec();
        assert_eq!(cpu, gpu, "mask of {len} at rate {rate}");
    }
}

// ---- on a GPU: a failing device ----------------------------------------------------------

/// Allocating 4 TiB fails; the failure is an error at the sync points, later work is skipped
/// and the process lives on. The failure stays for the rest of the process (as CUDA's sticky
/// errors do), so the test runs itself again in a child process, where it provokes it without
/// stopping the other tests' kernels.
#[test]
fn out_of_memory_is_an_error_not_an_exit() {
    const TEST: &str = "out_of_memory_is_an_error_not_an_exit";
    if !cuda_or_skip(TEST) {
        return;
    }
    if std::env::var_os("KILN_TEST_FAIL_THE_DEVICE").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--test-threads=1"])
            .env("KILN_TEST_FAIL_THE_DEVICE", "1")
            .output()
            .unwrap();
        let report = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "the child failed:\n{report}");
        assert!(
            report.contains("1 passed"),
            "the child ran the test:\n{report}"
        );
        return;
    }
    let huge = Tensor::zeros_on([1usize << 40], Device::Cuda);
    assert_eq!(huge.numel(), 1 << 40, "a placeholder of the asked length");
    let err = Device::Cuda.check().expect_err("allocating 4 TiB fails");
    assert!(err.0.contains("OUT_OF_MEMORY"), "names the failure: {err}");
    // Later work is skipped; every sync point reports the first failure.
    let small = tensor(vec![1.0, 2.0, 3.0], &[3])
        .to_device(Device::Cuda)
        .mul_scalar(2.0);
    assert_eq!(small.try_to_vec(), Err(err.clone()));
    assert_eq!(small.sum_all().try_item(), Err(err.clone()));
    let moved = small.to_device(Device::Cpu).to_vec();
    assert!(
        moved.len() == 3 && moved.iter().all(|v| v.is_nan()),
        "data leaving the failed device is NaN: {moved:?}"
    );
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| small.to_vec()))
        .expect_err("to_vec panics with the failure");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains(&err.0), "{message}");
    let as_error = kiln::Error::from(err);
    assert_eq!(as_error.exit_code(), 1);
    assert!(as_error.to_string().starts_with("CUDA: "), "{as_error}");
    // The process goes on, and the CPU still computes.
    assert_eq!(tensor(vec![1.0, 2.0], &[2]).sum_all().item(), 3.0);
}

// ---- on a GPU: training and checkpoints -----------------------------------------------

fn test_accuracy(out: &std::process::Output) -> f64 {
    assert!(out.status.success(), "{}", stderr(out));
    let v: serde_json::Value = serde_json::from_str(stdout(out).trim()).unwrap();
    v["test"]["accuracy"].as_f64().unwrap()
}

#[test]
fn shipped_models_reach_their_floors_on_cuda() {
    if !cuda_or_skip("shipped_models_reach_their_floors_on_cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (config, floor) in [
        ("configs/mnist_mlp.toml", 0.93),
        ("configs/mnist_cnn.toml", 0.965),
    ] {
        let run = dir.path().join(config.replace('/', "_"));
        let out = train_shipped(config, &run, &["--device", "cuda", "--json"]);
        let acc = test_accuracy(&out);
        eprintln!("{config} on CUDA: test accuracy {acc}");
        assert!(acc >= floor, "{config} on CUDA: {acc} < {floor}");
        let info = common::bin::run_info(&run);
        assert_eq!(info["device"], "cuda:0");
    }
}

#[test]
fn checkpoints_move_between_devices() {
    if !cuda_or_skip("checkpoints_move_between_devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (first, then) in [("cuda", "cpu"), ("cpu", "cuda")] {
        let run = dir.path().join(format!("{first}-then-{then}"));
        let one = ["--device", first, "--set", "train.epochs=1"];
        let out = train_shipped("configs/mnist_mlp.toml", &run, &one);
        assert!(out.status.success(), "{}", stderr(&out));
        let run_arg = run.to_str().unwrap();
        let out = common::bin::kiln(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            &[
                "train",
                "--resume",
                run_arg,
                "--device",
                then,
                "--quiet",
                "--json",
                "--set",
                "train.epochs=3",
            ],
        );
        let acc = test_accuracy(&out);
        eprintln!("mnist_mlp, 1 epoch on {first} then 2 on {then}: test accuracy {acc}");
        assert!(acc >= 0.92, "{first} then {then}: {acc}");
        let info = common::bin::run_info(&run);
        assert_eq!(info["epochs_done"], 3);
        // Evaluate the result on the other device too.
        let out = common::bin::kiln(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            &["eval", run_arg, "--device", first, "--json"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let again = v["metrics"]["accuracy"].as_f64().unwrap();
        // The other device may round a near-tie the other way: a few of 2,000 rows at most.
        assert!(
            (again - acc).abs() <= 0.002,
            "eval on {first}: {again} vs {acc}"
        );
    }
}

#[test]
fn lstm_cell_matches_the_cpu() {
    if !cuda_or_skip("lstm_cell_matches_the_cpu") {
        return;
    }
    for (rows, u) in [(1usize, 1usize), (5, 7), (64, 128)] {
        let keep: Vec<f32> = (0..rows)
            .map(|r| if r % 3 == 2 { 0.0 } else { 1.0 })
            .collect();
        compare_tol(
            &format!("lstm_cell {rows}x{u}"),
            &[
                random(&[rows, 4 * u], 31),
                random(&[rows, 4 * u], 32),
                random(&[rows, u], 33),
                random(&[rows, u], 34),
                (keep, vec![rows]),
            ],
            1e-5,
            1e-5,
            |t| t[0].lstm_cell(&t[1], &t[2], &t[3], &t[4]),
        );
    }
}

/// The whole-sequence LSTM, which CUDA composes of products and the fused cell step by step,
/// against the CPU's kernel: both directions, padded steps, a batch past the CPU's row blocks.
#[test]
fn lstm_sequence_matches_the_cpu() {
    if !cuda_or_skip("lstm_sequence_matches_the_cpu") {
        return;
    }
    for (n, len, u) in [
        (1usize, 1usize, 1usize),
        (5, 4, 7),
        (40, 6, 16),
        (64, 28, 128),
    ] {
        for reverse in [false, true] {
            let keep: Vec<f32> = (0..n * len)
                .map(|i| {
                    if i % len >= len - (i / len) % len {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            let mut w_hh = random(&[4 * u, u], 42);
            let scale = 1.0 / (u as f32).sqrt();
            w_hh.0.iter_mut().for_each(|v| *v *= scale);
            compare_tol(
                &format!("lstm_sequence {n}x{len}x{u} reverse {reverse}"),
                &[
                    random(&[n, len, 4 * u], 41),
                    random(&[4 * u], 43),
                    w_hh,
                    (keep, vec![n, len]),
                ],
                1e-4,
                1e-5,
                |t| t[0].lstm_sequence(&t[1], &t[2], &t[3], reverse),
            );
        }
    }
}

#[test]
fn batch_norm_matches_the_cpu() {
    if !cuda_or_skip("batch_norm_matches_the_cpu") {
        return;
    }
    for dims in [vec![7usize, 5], vec![3, 2, 4, 5], vec![64, 16, 28, 28]] {
        let c = dims[1];
        compare_tol(
            &format!("batch_norm {dims:?}"),
            &[random(&dims, 41), random(&[c], 42), random(&[c], 43)],
            1e-4,
            1e-4,
            |t| t[0].batch_norm_train(&t[1], &t[2], 1e-5).0,
        );
    }
}

// ---- train.precision on the GPU (bf16 / f16 operands, f32 accumulation) ---------------------

/// Each cast kernel rounds as the CPU does (`Precision::round`): a product by a 1×1 one is the
/// operand itself, rounded, so ties, f16's overflow to inf, its subnormals and NaN are compared
/// exactly.
#[test]
fn half_casts_round_like_the_cpu() {
    use kiln::backend::{autocast, Precision};
    if !cuda_or_skip("half_casts_round_like_the_cpu") {
        return;
    }
    let mut values = vec![
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65504.0,
        65519.0,
        65520.0,
        -1e6,
        2f32.powi(-24),
        2f32.powi(-25),
        3e-6,
        1e30,
        f32::INFINITY,
    ];
    values.extend(uniform(1000, -300.0, 300.0, &mut Rng::new(3)));
    let n = values.len();
    let a = Tensor::from_vec(values.clone(), [n, 1]);
    let one = Tensor::from_vec(vec![1.0], [1, 1]);
    for p in [Precision::Bf16, Precision::F16] {
        let _scope = autocast(p);
        let got = a
            .to_device(Device::Cuda)
            .matmul(&one.to_device(Device::Cuda))
            .to_vec();
        for (x, g) in values.iter().zip(&got) {
            let want = p.round(*x);
            assert!(
                g.to_bits() == want.to_bits(),
                "{p:?}: {x} rounds to {want} on the CPU, {g} on CUDA"
            );
        }
    }
    let nan = Tensor::from_vec(vec![f32::NAN], [1, 1]).to_device(Device::Cuda);
    for p in [Precision::Bf16, Precision::F16] {
        let _scope = autocast(p);
        assert!(nan.matmul(&one.to_device(Device::Cuda)).to_vec()[0].is_nan());
    }
}

/// Products and convolutions in bf16/f16 on CUDA, forward and backward: against the CPU's f32
/// reference within the rounding bound of tests/precision.rs ((2u + u² + k·2^-24)·Σ|a||b|,
/// Σ|a||b| from the same op on absolute values), and against the CPU's emulation at the f32
/// tolerance of the other matmul tests (the same rounded operands, summed in another order).
#[test]
fn half_precision_products_match_the_cpu() {
    use kiln::backend::{autocast, Precision};
    if !cuda_or_skip("half_precision_products_match_the_cpu") {
        return;
    }
    type Op = Box<dyn Fn(&Tensor, &Tensor) -> Tensor>;
    // (name, a's shape, b's shape, the longest dot product, the op)
    type Case = (&'static str, Vec<usize>, Vec<usize>, usize, Op);
    let cases: Vec<Case> = vec![
        (
            "matmul",
            vec![64, 300],
            vec![300, 33],
            300,
            Box::new(|a, b| a.matmul(b)),
        ),
        (
            "matmul tt",
            vec![300, 64],
            vec![33, 300],
            300,
            Box::new(|a, b| a.matmul_t(b, true, true)),
        ),
        (
            "batched",
            vec![4, 7, 50],
            vec![4, 50, 9],
            50,
            Box::new(|a, b| a.matmul(b)),
        ),
        (
            "shared",
            vec![4, 7, 50],
            vec![50, 9],
            50,
            Box::new(|a, b| a.matmul(b)),
        ),
        (
            "conv2d",
            vec![5, 3, 12, 11],
            vec![8, 3, 3, 3],
            5 * 12 * 11,
            Box::new(|x, w| x.conv2d(w, None, (1, 1), (1, 1))),
        ),
    ];
    let run = |a: &Tensor, b: &Tensor, r: &Tensor, f: &Op, device: Device| {
        let a = a.to_device(device).with_requires_grad();
        let b = b.to_device(device).with_requires_grad();
        let y = f(&a, &b);
        y.mul(&r.to_device(device)).sum_all().backward();
        [
            y.to_vec(),
            a.grad().unwrap().to_vec(),
            b.grad().unwrap().to_vec(),
        ]
    };
    for (name, da, db, k, f) in &cases {
        let a = tensor(
            uniform(da.iter().product(), -2.0, 2.0, &mut Rng::new(1)),
            da,
        );
        let b = tensor(
            uniform(db.iter().product(), -2.0, 2.0, &mut Rng::new(2)),
            db,
        );
        let y = f(&a, &b);
        let r = tensor(uniform(y.numel(), -1.0, 1.0, &mut Rng::new(3)), y.dims());
        let reference = run(&a, &b, &r, f, Device::Cpu);
        let magnitude = run(&a.abs(), &b.abs(), &r.abs(), f, Device::Cpu);
        for p in [Precision::Bf16, Precision::F16] {
            let _scope = autocast(p);
            let cuda = run(&a, &b, &r, f, Device::Cuda);
            let emulated = run(&a, &b, &r, f, Device::Cpu);
            let u = p.unit_roundoff();
            let bound = 2.0 * u + u * u + *k as f32 * 2f32.powi(-24);
            for (part, what) in ["forward", "da", "db"].iter().enumerate() {
                let mut differs = false;
                for i in 0..reference[part].len() {
                    let (g, want, m) = (cuda[part][i], reference[part][i], magnitude[part][i]);
                    assert!(
                        (g - want).abs() <= bound * m,
                        "{name} {p:?} {what}[{i}]: CUDA {g} against f32 {want} (bound {})",
                        bound * m
                    );
                    let e = emulated[part][i];
                    assert!(
                        (g - e).abs() <= 1e-4 + 1e-4 * m,
                        "{name} {p:?} {what}[{i}]: CUDA {g} against the CPU's emulation {e}"
                    );
                    differs |= g != want;
                }
                assert!(
                    differs,
                    "{name} {p:?} {what}: identical to f32: not rounded"
                );
            }
        }
    }
}

#[test]
fn shipped_models_reach_their_floors_in_bf16_on_cuda() {
    if !cuda_or_skip("shipped_models_reach_their_floors_in_bf16_on_cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (config, floor) in [
        ("configs/mnist_mlp.toml", 0.93),
        ("configs/mnist_cnn.toml", 0.965),
    ] {
        let run = dir.path().join(config.replace('/', "_"));
        let args = ["--device", "cuda", "--precision", "bf16", "--json"];
        let out = train_shipped(config, &run, &args);
        let acc = test_accuracy(&out);
        eprintln!("{config} on CUDA in bf16: test accuracy {acc}");
        assert!(acc >= floor, "{config} on CUDA in bf16: {acc} < {floor}");
    }
}

/// As tests/train_precision.rs on the CPU: a scale of 2^40 overflows f16 in the backward pass;
/// the run skips steps, halving the scale, and goes on to learn.
#[test]
fn an_f16_run_that_overflows_recovers_on_cuda() {
    if !cuda_or_skip("an_f16_run_that_overflows_recovers_on_cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = train_shipped(
        "configs/mnist_mlp.toml",
        &run,
        &[
            "--device",
            "cuda",
            "--precision",
            "f16",
            "--set",
            "train.loss_scale={init_scale=1099511627776}",
            "--json",
        ],
    );
    let acc = test_accuracy(&out);
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    let skipped = log.matches("step skipped").count();
    eprintln!(
        "mnist_mlp on CUDA in f16 from scale 2^40: {skipped} steps skipped, test accuracy {acc}"
    );
    assert!(skipped >= 15, "{log}");
    assert!(acc >= 0.92, "test accuracy {acc}");
}
