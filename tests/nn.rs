//! Layers, model building, losses and gradient clipping.

mod common;

use common::*;
use kiln::loss::Loss;
use kiln::nn::{LayerSpec, Mode, Model};
use kiln::optim::clip_grad_norm;
use kiln::{Rng, Shape, Tensor};

fn spec(kind: &str) -> LayerSpec {
    LayerSpec {
        kind: kind.into(),
        ..Default::default()
    }
}

fn dense(units: usize, activation: Option<&str>) -> LayerSpec {
    LayerSpec {
        units: Some(units),
        activation: activation.map(String::from),
        ..spec("dense")
    }
}

#[test]
fn model_infers_shapes_and_names_parameters_like_pytorch() {
    let layers = [
        spec("flatten"),
        dense(128, Some("relu")),
        LayerSpec {
            rate: Some(0.2),
            ..spec("dropout")
        },
        dense(10, None),
    ];
    let model = Model::build(&layers, &Shape::from([28, 28]), &mut Rng::new(1)).unwrap();
    let rows = model.summary();
    let shapes: Vec<String> = rows.iter().map(|r| r.output_shape.to_string()).collect();
    assert_eq!(shapes, ["[784]", "[128]", "[128]", "[10]"]);
    let names: Vec<(String, Vec<usize>)> = model
        .named_params()
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect();
    assert_eq!(
        names,
        [
            ("layers.1.weight".to_string(), vec![128, 784]),
            ("layers.1.bias".to_string(), vec![128]),
            ("layers.3.weight".to_string(), vec![10, 128]),
            ("layers.3.bias".to_string(), vec![10]),
        ]
    );
    assert_eq!(model.num_params(), 784 * 128 + 128 + 128 * 10 + 10);
    // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let w = model.named_params()[0].1.to_vec();
    let bound = 1.0 / 784f32.sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(w.iter().cloned().fold(0.0, f32::max) > 0.9 * bound);
}

#[test]
fn shape_mismatch_names_the_layer_and_both_shapes() {
    let err = Model::build(&[dense(4, None)], &Shape::from([28, 28]), &mut Rng::new(1))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "model.layers.0 (dense): dense needs a flat input [features], got [28, 28]; add a flatten layer before it"
    );
}

#[test]
fn layer_errors_name_the_problem() {
    let build = |s: LayerSpec| {
        Model::build(&[s], &Shape::from([3]), &mut Rng::new(1))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(build(spec("dense")).contains("needs `units`"));
    assert!(build(spec("dens")).contains("did you mean \"dense\""));
    assert!(build(LayerSpec {
        rate: Some(0.5),
        ..dense(2, None)
    })
    .contains("takes no `rate`"));
    assert!(build(dense(2, Some("rleu"))).contains("did you mean \"relu\""));
    assert!(build(LayerSpec {
        rate: Some(1.0),
        ..spec("dropout")
    })
    .contains("[0, 1)"));
}

#[test]
fn dropout_scales_in_training_and_is_identity_in_eval() {
    let model = Model::build(
        &[LayerSpec {
            rate: Some(0.25),
            ..spec("dropout")
        }],
        &Shape::from([1000]),
        &mut Rng::new(1),
    )
    .unwrap();
    let x = Tensor::ones([4, 1000]);
    let mut rng = Rng::new(7);
    let train = model.forward(&x, &mut Mode::new(true, &mut rng)).to_vec();
    let zeros = train.iter().filter(|&&v| v == 0.0).count() as f32 / train.len() as f32;
    assert!((zeros - 0.25).abs() < 0.03, "dropped fraction {zeros}");
    assert!(train
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let eval = model.forward(&x, &mut Mode::new(false, &mut rng)).to_vec();
    assert!(eval.iter().all(|&v| v == 1.0));
}

#[test]
fn final_softmax_folds_into_the_loss() {
    let mut rng = Rng::new(3);
    let layers = [dense(4, Some("softmax"))];
    let mut model = Model::build(&layers, &Shape::from([3]), &mut rng).unwrap();
    let x = Tensor::randn([2, 3], 0.0, 1.0, &mut rng);
    let probs = model.forward(&x, &mut Mode::new(false, &mut rng));
    assert!(model.fold_final_softmax());
    let logits = model.forward(&x, &mut Mode::new(false, &mut rng));
    assert_eq!(logits.softmax(1).to_vec(), probs.to_vec());
    let mut with_layer = Model::build(
        &[dense(4, None), spec("softmax")],
        &Shape::from([3]),
        &mut rng,
    )
    .unwrap();
    assert!(with_layer.fold_final_softmax());
    let mut plain = Model::build(&[dense(4, None)], &Shape::from([3]), &mut rng).unwrap();
    assert!(!plain.fold_final_softmax());
}

/// Loss references in f64, per element then averaged.
fn loss_reference(loss: Loss, o: &[f32], t: &[f32]) -> f64 {
    let per: Vec<f64> = o
        .iter()
        .zip(t)
        .map(|(&o, &t)| {
            let (o, t) = (o as f64, t as f64);
            match loss {
                Loss::Mse => (o - t).powi(2),
                Loss::Mae => (o - t).abs(),
                Loss::Huber { delta } => {
                    let (d, delta) = ((o - t).abs(), delta as f64);
                    if d < delta {
                        0.5 * d * d
                    } else {
                        delta * (d - 0.5 * delta)
                    }
                }
                Loss::Bce => {
                    let p = 1.0 / (1.0 + (-o).exp());
                    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                }
                Loss::CrossEntropy => unreachable!("tested in ops_loss"),
            }
        })
        .collect();
    per.iter().sum::<f64>() / per.len() as f64
}

#[test]
fn losses_match_references_and_finite_differences() {
    let mut rng = Rng::new(9);
    for loss in [
        Loss::Mse,
        Loss::Mae,
        Loss::Huber { delta: 1.0 },
        Loss::Huber { delta: 0.3 },
        Loss::Bce,
    ] {
        let n = 7;
        let o = away_from_zero(n, &mut rng);
        let t: Vec<f32> = if loss == Loss::Bce {
            (0..n).map(|i| (i % 2) as f32).collect()
        } else {
            // Targets off by at least 0.15 from the outputs and from the huber knees.
            o.iter()
                .enumerate()
                .map(|(i, v)| v + if i % 2 == 0 { 0.2 } else { -1.7 })
                .collect()
        };
        let out = tensor(o.clone(), &[n, 1]);
        let target = tensor(t.clone(), &[n]);
        let got = loss.compute(&out, &target).item();
        let want = loss_reference(loss, &o, &t);
        assert!(
            (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{loss:?}: {got} vs {want}"
        );
        check_grads(&format!("{loss:?}"), &[out], |x| {
            loss.compute(&x[0], &target)
        });
    }
}

#[test]
fn clip_grad_norm_scales_to_the_bound() {
    let a = Tensor::from_vec(vec![3.0], [1]).with_requires_grad();
    let b = Tensor::from_vec(vec![4.0], [1]).with_requires_grad();
    a.mul(&a)
        .mul_scalar(0.5)
        .add(&b.mul(&b).mul_scalar(0.5))
        .sum_all()
        .backward();
    let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
    let norm = clip_grad_norm(&params, 1.0);
    assert!((norm - 5.0).abs() < 1e-6);
    let (ga, gb) = (a.grad().unwrap().item(), b.grad().unwrap().item());
    assert!(
        (ga - 0.6).abs() < 1e-5 && (gb - 0.8).abs() < 1e-5,
        "{ga} {gb}"
    );
    assert_eq!(clip_grad_norm(&params, 10.0), (ga * ga + gb * gb).sqrt());
}

fn image_layer(kind: &str, f: impl FnOnce(&mut LayerSpec)) -> LayerSpec {
    let mut s = spec(kind);
    f(&mut s);
    s
}

#[test]
fn batchnorm_gradients_in_training_and_running_statistics_in_eval() {
    let mut rng = Rng::new(21);
    for input in [vec![5], vec![3, 4, 5]] {
        let model =
            Model::build(&[spec("batchnorm")], &Shape::from(input.clone()), &mut rng).unwrap();
        let mut dims = vec![6];
        dims.extend(&input);
        let x = tensor(uniform(numel(&dims), -2.0, 2.0, &mut rng), &dims);
        // Finite differences through the training-mode forward (batch statistics).
        check_grads(
            &format!("batchnorm {input:?}"),
            std::slice::from_ref(&x),
            |t| model.forward(&t[0], &mut Mode::new(true, &mut Rng::new(0))),
        );
        // Training output: zero mean, unit (biased) variance per channel.
        let y = model.forward(&x, &mut Mode::new(true, &mut rng));
        let c = input[0];
        let per_channel = numel(&dims) / c;
        let v = y.to_vec();
        for ch in 0..c {
            let vals: Vec<f64> = (0..v.len())
                .filter(|i| (i / (per_channel / 6)) % c == ch)
                .map(|i| v[i] as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "channel {ch}: {mean} {var}"
            );
        }
        // Eval uses the running statistics, which moved from (0, 1) towards the batch's.
        let state = model.named_state();
        let running_mean = state
            .iter()
            .find(|(n, _)| n.ends_with("running_mean"))
            .unwrap()
            .1
            .to_vec();
        assert!(running_mean.iter().any(|m| m.abs() > 1e-4));
        let eval = model.forward(&x, &mut Mode::new(false, &mut rng));
        assert_ne!(eval.to_vec(), v);
    }
}

#[test]
fn image_layers_check_their_inputs() {
    use kiln::nn::{Padding, Pair};
    let build = |layers: &[LayerSpec], input: &[usize]| {
        Model::build(layers, &Shape::from(input), &mut Rng::new(1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let conv = |f: fn(&mut LayerSpec)| {
        image_layer("conv2d", |s| {
            s.filters = Some(2);
            s.kernel = Some(Pair::Same(3));
            f(s)
        })
    };
    assert_eq!(
        build(&[conv(|_| {})], &[784]),
        "model.layers.0 (conv2d): conv2d needs an image input [channels, height, width], got [784]"
    );
    assert!(
        build(&[conv(|s| s.kernel = Some(Pair::Same(9)))], &[1, 5, 5])
            .contains("does not fit input [1, 5, 5]")
    );
    assert!(build(
        &[conv(|s| s.padding = Some(Padding::Mode("same".into())))],
        &[1, 5, 5]
    )
    .is_empty());
    assert!(build(
        &[conv(|s| {
            s.padding = Some(Padding::Mode("same".into()));
            s.kernel = Some(Pair::Same(2))
        })],
        &[1, 5, 5]
    )
    .contains("odd kernel"));
    assert!(build(
        &[conv(|s| s.padding = Some(Padding::Mode("smae".into())))],
        &[1, 5, 5]
    )
    .contains("unknown padding"));
    assert!(build(&[image_layer("maxpool2d", |_| {})], &[4]).contains("needs an image input"));
    let model = Model::build(
        &[
            conv(|s| {
                s.stride = Some(Pair::Same(2));
                s.padding = Some(Padding::Size(1))
            }),
            image_layer("maxpool2d", |_| {}),
            spec("global_avgpool"),
        ],
        &Shape::from([1, 9, 9]),
        &mut Rng::new(1),
    )
    .unwrap();
    let shapes: Vec<String> = model
        .summary()
        .iter()
        .map(|r| r.output_shape.to_string())
        .collect();
    assert_eq!(shapes, ["[2, 5, 5]", "[2, 2, 2]", "[2]"]);
}

fn named(mut s: LayerSpec, name: &str) -> LayerSpec {
    s.name = Some(name.into());
    s
}

fn reading(mut s: LayerSpec, inputs: &[&str]) -> LayerSpec {
    s.inputs = Some(inputs.iter().map(|i| i.to_string()).collect());
    s
}

/// A residual block and two branches joined: the graph computes what the layers composed by
/// hand compute, and its gradient with respect to the input matches finite differences
/// (through both branches of the add and both parts of the concat).
#[test]
fn graphs_compute_their_composition_and_its_gradient() {
    let layers = [
        named(dense(5, Some("tanh")), "a"),
        dense(5, Some("tanh")),
        reading(spec("add"), &["a", "layers.1"]),
        named(dense(3, Some("sigmoid")), "b"),
        reading(dense(2, None), &["input"]),
        reading(spec("concat"), &["b", "layers.4"]),
        dense(2, None),
    ];
    let model = Model::build(&layers, &Shape::from([4]), &mut Rng::new(3)).unwrap();
    assert!(!model.is_stack());
    let shapes: Vec<String> = model
        .summary()
        .iter()
        .map(|r| r.output_shape.to_string())
        .collect();
    assert_eq!(shapes, ["[5]", "[5]", "[5]", "[3]", "[2]", "[5]", "[2]"]);
    let inputs: Vec<Vec<String>> = model.summary().into_iter().map(|r| r.inputs).collect();
    assert_eq!(inputs[2], ["a", "layers.1"]);
    assert_eq!(inputs[4], ["input"]);

    let p: std::collections::HashMap<String, Tensor> = model.named_params().into_iter().collect();
    let lin = |x: &Tensor, i: usize| {
        x.matmul_t(&p[&format!("layers.{i}.weight")], false, true)
            .add(&p[&format!("layers.{i}.bias")])
    };
    let x = tensor(uniform(3 * 4, -1.0, 1.0, &mut Rng::new(8)), &[3, 4]);
    let a = lin(&x, 0).tanh();
    let sum = a.add(&lin(&a, 1).tanh());
    let b = lin(&sum, 3).sigmoid();
    let side = lin(&x, 4);
    let want = lin(&Tensor::cat(&[b, side], 1), 6);
    let got = model.infer(&x);
    assert_close(
        "graph forward",
        &got.to_vec(),
        &want.to_vec().iter().map(|&v| v as f64).collect::<Vec<_>>(),
        1e-6,
    );

    check_grads("graph", &[x], |xs| {
        let mut rng = Rng::new(0);
        model.forward(&xs[0], &mut Mode::new(false, &mut rng))
    });
}

#[test]
fn graph_errors_name_the_layer_and_the_problem() {
    let err = |layers: &[LayerSpec], input: &[usize]| {
        Model::build(layers, &Shape::from(input), &mut Rng::new(1))
            .err()
            .expect("an error")
            .to_string()
    };
    let e = err(
        &[
            reading(dense(2, None), &["later"]),
            named(dense(2, None), "later"),
        ],
        &[3],
    );
    assert!(
        e.starts_with("model.layers.0 (dense)")
            && e.contains("a later layer (model.layers.1)")
            && e.contains("no cycles"),
        "{e}"
    );
    let e = err(&[named(reading(dense(2, None), &["me"]), "me")], &[3]);
    assert!(e.contains("\"me\", itself"), "{e}");
    let e = err(
        &[
            named(dense(2, None), "trunk"),
            reading(dense(2, None), &["trunc"]),
        ],
        &[3],
    );
    assert!(
        e.starts_with("model.layers.1 (dense)") && e.contains("did you mean \"trunk\""),
        "{e}"
    );
    let e = err(
        &[named(dense(2, None), "x"), named(dense(2, None), "x")],
        &[3],
    );
    assert!(e.contains("the name \"x\" is taken"), "{e}");
    let e = err(&[named(dense(2, None), "input")], &[3]);
    assert!(e.contains("the name \"input\" is taken"), "{e}");
    let e = err(&[dense(2, None), spec("add")], &[3]);
    assert!(
        e.starts_with("model.layers.1 (add)") && e.contains("two or more"),
        "{e}"
    );
    let e = err(
        &[
            named(dense(2, None), "a"),
            reading(dense(2, None), &["a", "input"]),
        ],
        &[3],
    );
    assert!(e.contains("reads one input"), "{e}");
    let e = err(
        &[
            named(dense(2, None), "a"),
            reading(spec("add"), &["a", "input"]),
        ],
        &[3],
    );
    assert!(
        e.contains("add needs inputs of one shape, got [2] and [3]"),
        "{e}"
    );
    let conv = |f: usize| LayerSpec {
        filters: Some(f),
        kernel: Some(kiln::nn::Pair::Same(3)),
        ..spec("conv2d")
    };
    // Images join channels: [2, 4, 4] + [1, 6, 6] differ in height and width.
    let e = err(
        &[
            named(conv(2), "c"),
            reading(spec("concat"), &["c", "input"]),
        ],
        &[1, 6, 6],
    );
    assert!(
        e.contains("concat joins along axis 0") && e.contains("[2, 4, 4] and [1, 6, 6]"),
        "{e}"
    );
    let ok = Model::build(
        &[
            named(conv(2), "c"),
            conv(3),
            reading(spec("concat"), &["c", "layers.1"]),
        ],
        &Shape::from([1, 8, 8]),
        &mut Rng::new(1),
    );
    assert!(ok.is_err(), "[2, 6, 6] and [3, 4, 4] do not join");
    let joined = Model::build(
        &[
            named(
                LayerSpec {
                    padding: Some(kiln::nn::Padding::Mode("same".into())),
                    ..conv(2)
                },
                "c",
            ),
            LayerSpec {
                padding: Some(kiln::nn::Padding::Mode("same".into())),
                ..conv(3)
            },
            reading(spec("concat"), &["c", "layers.1"]),
        ],
        &Shape::from([1, 8, 8]),
        &mut Rng::new(1),
    )
    .unwrap();
    assert_eq!(joined.output_shape().dims(), [5, 8, 8]);
}

/// Sequences: an embedding gives each id its row (padding id 0 a zero vector that learns
/// nothing) and marks the real steps; pooling by mean, max and last real step skips padding;
/// gradients of every sequence layer match finite differences.
#[test]
fn sequence_layers_pool_real_steps_and_differentiate() {
    let ids = Tensor::from_vec(vec![3.0, 1.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0], [2, 4]);
    let layers = [LayerSpec {
        dim: Some(3),
        vocab: Some(5),
        ..spec("embedding")
    }];
    let model = Model::build(&layers, &Shape::from([4]), &mut Rng::new(2)).unwrap();
    let weight = model.named_params()[0].1.clone();
    let w = weight.to_vec();
    assert_eq!(
        &w[..3],
        &[0.0, 0.0, 0.0],
        "the padding id's vector starts at zero"
    );
    let mut rng = Rng::new(0);
    let mut mode = Mode::new(true, &mut rng);
    let y = model.forward(&ids.clone(), &mut mode);
    assert_eq!(
        mode.mask.as_ref().unwrap().to_vec(),
        [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    );
    let yv = y.to_vec();
    assert_eq!(&yv[..3], &w[9..12], "id 3");
    assert_eq!(&yv[12..15], &w[6..9], "id 2");
    y.sum_all().backward();
    let g = weight.grad().unwrap().to_vec();
    assert_eq!(&g[..3], &[0.0, 0.0, 0.0], "padding learns nothing");
    assert_eq!(&g[6..9], &[2.0, 2.0, 2.0], "id 2 used twice");

    let x = tensor(away_from_zero(2 * 4 * 3, &mut Rng::new(4)), &[2, 4, 3]);
    let mask = Tensor::from_vec(vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0], [2, 4]);
    for mode_name in ["mean", "max", "last"] {
        let pool = Model::build(
            &[LayerSpec {
                mode: Some(mode_name.into()),
                ..spec("sequence_pool")
            }],
            &Shape::from([4, 3]),
            &mut Rng::new(1),
        )
        .unwrap();
        let run = |xs: &[Tensor]| {
            let mut rng = Rng::new(0);
            let mut m = Mode::new(false, &mut rng);
            m.mask = Some(mask.clone());
            pool.forward(&xs[0], &mut m)
        };
        let got = run(std::slice::from_ref(&x)).to_vec();
        let xv = x.to_vec();
        let at = |i: usize, t: usize, f: usize| xv[(i * 4 + t) * 3 + f] as f64;
        let want: Vec<f64> = (0..2)
            .flat_map(|i| {
                let real = if i == 0 { 2 } else { 3 };
                (0..3).map(move |f| match mode_name {
                    "mean" => (0..real).map(|t| at(i, t, f)).sum::<f64>() / real as f64,
                    "max" => (0..real).map(|t| at(i, t, f)).fold(f64::MIN, f64::max),
                    _ => at(i, real - 1, f),
                })
            })
            .collect();
        assert_close(&format!("sequence_pool {mode_name}"), &got, &want, 1e-6);
        check_grads(
            &format!("sequence_pool {mode_name}"),
            std::slice::from_ref(&x),
            run,
        );
    }
    // The recurrent, attention and transformer layers on a small padded batch.
    let seq = |kind: &str, f: fn(&mut LayerSpec)| {
        let mut s = spec(kind);
        f(&mut s);
        s
    };
    let cases = [
        seq("lstm", |s| {
            s.units = Some(2);
            s.bidirectional = Some(true);
        }),
        seq("gru", |s| {
            s.units = Some(2);
            s.return_sequences = Some(true);
        }),
        seq("attention", |s| s.heads = Some(1)),
        seq("transformer_encoder", |s| {
            s.heads = Some(1);
            s.ff_units = Some(4);
            s.rate = Some(0.0);
        }),
        seq("layernorm", |_| {}),
    ];
    for layer in cases {
        let kind = layer.kind.clone();
        let m = Model::build(&[layer], &Shape::from([4, 3]), &mut Rng::new(6)).unwrap();
        check_grads(&kind, std::slice::from_ref(&x), |xs| {
            let mut rng = Rng::new(0);
            let mut mode = Mode::new(false, &mut rng);
            mode.mask = Some(mask.clone());
            m.forward(&xs[0], &mut mode)
        });
    }
}

/// Two text columns, each read by its own embedding: every layer pools with the padding mask
/// of the sequence it reads, not the mask of whichever embedding ran last.
#[test]
fn each_branch_pools_with_its_own_padding_mask() {
    let part = |name: &str, start: usize| kiln::nn::InputPart {
        name: name.into(),
        start,
        width: 4,
    };
    let named = |name: &str, inputs: &[&str], s: LayerSpec| LayerSpec {
        name: Some(name.into()),
        inputs: Some(inputs.iter().map(|s| s.to_string()).collect()),
        ..s
    };
    let embedding = LayerSpec {
        dim: Some(2),
        vocab: Some(5),
        ..spec("embedding")
    };
    let mean = LayerSpec {
        mode: Some("mean".into()),
        ..spec("sequence_pool")
    };
    let layers = [
        named("ea", &["a"], embedding.clone()),
        named("eb", &["b"], embedding),
        named("pb", &["eb"], mean.clone()),
        named("pa", &["ea"], mean),
        named("both", &["pa", "pb"], spec("concat")),
    ];
    let parts = [part("a", 0), part("b", 4)];
    let model =
        Model::build_with_parts(&layers, &Shape::from([8]), &parts, &mut Rng::new(3)).unwrap();
    // a: ids 2, 3 then padding; b: four real ids.
    let ids = Tensor::from_vec(vec![2.0, 3.0, 0.0, 0.0, 1.0, 1.0, 1.0, 4.0], [1, 8]);
    let y = model.infer(&ids).to_vec();
    let params = model.named_params();
    let (wa, wb) = (params[0].1.to_vec(), params[1].1.to_vec());
    let row = |w: &[f32], id: usize, f: usize| w[id * 2 + f];
    for f in 0..2 {
        let want_a = (row(&wa, 2, f) + row(&wa, 3, f)) / 2.0;
        let want_b = (3.0 * row(&wb, 1, f) + row(&wb, 4, f)) / 4.0;
        assert!((y[f] - want_a).abs() < 1e-6, "a[{f}]: {} vs {want_a}", y[f]);
        assert!(
            (y[2 + f] - want_b).abs() < 1e-6,
            "b[{f}]: {} vs {want_b}",
            y[2 + f]
        );
    }
}
