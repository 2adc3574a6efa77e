//! The engine against PyTorch: a 784→32→10 MLP on 16 MNIST rows, from the fixture that
//! `tests/fixtures/make_golden.py` generates (torch version in the file's metadata).

use kiln::nn::{LayerSpec, Mode, Model};
use kiln::optim::{Optimizer, OptimizerKind};
use kiln::{Device, Rng, Shape, Tensor};
use safetensors::{Dtype, SafeTensors};

mod common;

const FIXTURE: &[u8] = include_bytes!("fixtures/golden_mlp.safetensors");
const CNN_FIXTURE: &[u8] = include_bytes!("fixtures/golden_cnn.safetensors");

fn load(st: &SafeTensors, name: &str) -> Tensor {
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture tensor {name}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{name}");
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_vec(data, view.shape())
}

/// max |got - want| / max |want|: the error relative to the tensor's scale, so entries near zero
/// (where elementwise relative error is meaningless) are judged against the whole tensor.
fn relative_error(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.to_vec(), want.to_vec());
    let diff = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let scale = w.iter().map(|b| b.abs() as f64).fold(0.0, f64::max);
    diff / scale
}

/// Each fixture is checked on the CPU and, where a GPU is present, on CUDA.
macro_rules! on_each_device {
    ($check:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() {
            $check(Device::Cpu);
        }

        #[test]
        fn $cuda() {
            if common::cuda_or_skip(stringify!($cuda)) {
                $check(Device::Cuda);
            }
        }
    };
}

on_each_device!(
    mlp_check,
    mlp_forward_and_backward_match_pytorch,
    mlp_forward_and_backward_match_pytorch_on_cuda
);
on_each_device!(
    cnn_check,
    cnn_forward_backward_and_adam_steps_match_pytorch,
    cnn_forward_backward_and_adam_steps_match_pytorch_on_cuda
);
on_each_device!(
    optimizer_check,
    three_optimizer_steps_match_pytorch,
    three_optimizer_steps_match_pytorch_on_cuda
);

fn mlp_check(device: Device) {
    let st = SafeTensors::deserialize(FIXTURE).expect("fixture parses");
    let x = load(&st, "input").to_device(device);
    let target = load(&st, "target").to_device(device);
    let params: Vec<(&str, Tensor)> = [
        "layers.0.weight",
        "layers.0.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]
    .iter()
    .map(|&n| (n, load(&st, n).to_device(device).with_requires_grad()))
    .collect();
    let (w1, b1, w2, b2) = (&params[0].1, &params[1].1, &params[2].1, &params[3].1);

    // PyTorch's Linear: y = x·Wᵀ + b with W stored [out, in].
    let hidden = x.matmul_t(w1, false, true).add(b1).relu();
    let logits = hidden.matmul_t(w2, false, true).add(b2);
    let loss = logits.cross_entropy(&target);
    loss.backward();

    let checks = [
        ("logits", logits.clone(), load(&st, "logits")),
        ("loss", loss.clone(), load(&st, "loss")),
    ];
    for (name, got, want) in checks {
        let err = relative_error(&got, &want);
        eprintln!("{name}: relative error {err:.2e}");
        assert!(err < 1e-5, "{name}: relative error {err:e}");
    }
    for (name, p) in &params {
        let err = relative_error(&p.grad().unwrap(), &load(&st, &format!("grad.{name}")));
        eprintln!("grad of {name}: relative error {err:.2e}");
        assert!(err < 1e-5, "grad of {name}: relative error {err:e}");
    }
}

fn layer(kind: &str) -> LayerSpec {
    LayerSpec {
        kind: kind.into(),
        ..Default::default()
    }
}

fn dense(units: usize) -> LayerSpec {
    LayerSpec {
        units: Some(units),
        ..layer("dense")
    }
}

/// kiln layers with the fixture's starting state (parameters and buffers, named as PyTorch's
/// Sequential names them).
fn model_from(st: &SafeTensors, layers: &[LayerSpec], input: &[usize], device: Device) -> Model {
    let model = Model::build(layers, &Shape::from(input), &mut Rng::new(0)).expect("model builds");
    for (name, p) in model.named_state() {
        *p.storage_mut() = load(st, &name).storage().clone();
    }
    model.to_device(device);
    model
}

/// The MLP fixture's model: dense, relu, dense (layers.0 and layers.2).
fn fixture_model(st: &SafeTensors, device: Device) -> Model {
    model_from(st, &[dense(32), layer("relu"), dense(10)], &[784], device)
}

/// The CNN fixture's model: conv (stride 2, padding 1, no bias), batchnorm, relu, maxpool, flatten,
/// dense.
fn cnn_layers() -> Vec<LayerSpec> {
    use kiln::nn::{Padding, Pair};
    let conv = LayerSpec {
        filters: Some(4),
        kernel: Some(Pair::Same(3)),
        stride: Some(Pair::Same(2)),
        padding: Some(Padding::Size(1)),
        bias: Some(false), // batchnorm follows: a bias there would do nothing
        ..layer("conv2d")
    };
    vec![
        conv,
        layer("batchnorm"),
        layer("relu"),
        layer("maxpool2d"),
        layer("flatten"),
        dense(10),
    ]
}

fn cnn_check(device: Device) {
    let st = SafeTensors::deserialize(CNN_FIXTURE).expect("fixture parses");
    let (x, target) = (
        load(&st, "input").to_device(device),
        load(&st, "target").to_device(device),
    );
    let model = model_from(&st, &cnn_layers(), &[1, 28, 28], device);
    let mut rng = Rng::new(0);
    let logits = model.forward(&x, &mut Mode::new(true, &mut rng));
    let loss = logits.cross_entropy(&target);
    loss.backward();
    // The bound for the CNN is 1e-4: batchnorm divides by a batch standard deviation,
    // which amplifies rounding differences in the convolution sums.
    for (name, got, want) in [
        ("logits", logits, load(&st, "logits")),
        ("loss", loss, load(&st, "loss")),
    ] {
        let err = relative_error(&got, &want);
        eprintln!("cnn {name}: relative error {err:.2e}");
        assert!(err < 1e-4, "cnn {name}: relative error {err:e}");
    }
    for (name, p) in model.named_params() {
        let err = relative_error(&p.grad().unwrap(), &load(&st, &format!("grad.{name}")));
        eprintln!("cnn grad of {name}: relative error {err:.2e}");
        assert!(err < 1e-4, "cnn grad of {name}: relative error {err:e}");
    }

    let model = model_from(&st, &cnn_layers(), &[1, 28, 28], device);
    let adam = OptimizerKind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    train_steps(
        &model,
        Optimizer::new(adam, 0.0, model.named_params()),
        1e-3,
        &x,
        &target,
    );
    for (name, t) in model.named_state() {
        let err = relative_error(&t, &load(&st, &format!("after.adam.{name}")));
        eprintln!("cnn {name} after 3 Adam steps: relative error {err:.2e}");
        assert!(
            err < 1e-4,
            "cnn {name} after 3 steps: relative error {err:e}"
        );
    }
}

/// Three training steps on one batch, as the fixture's generator takes them.
fn train_steps(model: &Model, mut opt: Optimizer, lr: f32, x: &Tensor, target: &Tensor) {
    let mut rng = Rng::new(0);
    for _ in 0..3 {
        opt.zero_grad();
        let mut mode = Mode::new(true, &mut rng);
        model.forward(x, &mut mode).cross_entropy(target).backward();
        opt.step(lr);
    }
}

fn optimizer_check(device: Device) {
    let st = SafeTensors::deserialize(FIXTURE).expect("fixture parses");
    let (x, target) = (
        load(&st, "input").to_device(device),
        load(&st, "target").to_device(device),
    );
    let adam = OptimizerKind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let adamw = OptimizerKind::Adamw {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let momentum = OptimizerKind::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    let nesterov = OptimizerKind::Sgd {
        momentum: 0.9,
        nesterov: true,
    };
    let runs = [
        ("adam", adam, 1e-3, 0.0),
        ("sgd_momentum", momentum, 0.1, 0.0),
        ("adamw_decay", adamw, 1e-3, 0.01),
        ("sgd_nesterov_decay", nesterov, 0.05, 1e-3),
    ];
    for (name, kind, lr, weight_decay) in runs {
        let model = fixture_model(&st, device);
        let opt = Optimizer::new(kind, weight_decay, model.named_params());
        train_steps(&model, opt, lr, &x, &target);
        for (pname, p) in model.named_params() {
            let err = relative_error(&p, &load(&st, &format!("after.{name}.{pname}")));
            eprintln!("{name}: {pname} after 3 steps: relative error {err:.2e}");
            assert!(err < 1e-5, "{name}: {pname} relative error {err:e}");
        }
    }
}

const LOSS_FIXTURE: &[u8] = include_bytes!("fixtures/golden_loss.safetensors");

/// `[loss]`'s class weights and label smoothing against PyTorch's `cross_entropy(weight,
/// label_smoothing)` and `binary_cross_entropy_with_logits(weight=w[y])`: the loss and its
/// gradient (tests/fixtures/make_golden_loss.py).
#[test]
fn loss_options_match_pytorch() {
    use kiln::loss::{Criterion, Loss};
    let st = SafeTensors::deserialize(LOSS_FIXTURE).expect("fixture parses");
    let weights = load(&st, "class_weights").to_vec();
    let cases = [
        (
            "ce_weighted",
            Loss::CrossEntropy,
            Some(weights.clone()),
            0.0,
            "logits",
            "target",
        ),
        (
            "ce_smoothed",
            Loss::CrossEntropy,
            None,
            0.1,
            "logits",
            "target",
        ),
        (
            "ce_both",
            Loss::CrossEntropy,
            Some(weights),
            0.2,
            "logits",
            "target",
        ),
        (
            "bce_weighted",
            Loss::Bce,
            Some(load(&st, "bce_weights").to_vec()),
            0.0,
            "logit",
            "target01",
        ),
    ];
    for (name, loss, class_weights, label_smoothing, input, target) in cases {
        let criterion = Criterion {
            class_weights,
            label_smoothing,
        };
        let x = load(&st, input);
        let x = if loss == Loss::Bce {
            x.reshape([x.numel(), 1])
        } else {
            x
        };
        let x = x.with_requires_grad();
        let value = criterion.compute(loss, &x, &load(&st, target));
        value.backward();
        let want = load(&st, &format!("{name}.loss")).to_vec()[0];
        let got = value.item();
        let err = ((got - want) / want).abs();
        eprintln!("{name}: loss {got} (PyTorch {want}), relative error {err:.1e}");
        assert!(err < 1e-5, "{name}: loss {got}, PyTorch {want}");
        let grad = x
            .grad()
            .unwrap()
            .reshape(load(&st, &format!("{name}.grad")).shape().clone());
        let err = relative_error(&grad, &load(&st, &format!("{name}.grad")));
        eprintln!("{name}: gradient relative error {err:.1e}");
        assert!(err < 1e-5, "{name}: gradient relative error {err:e}");
    }
}
