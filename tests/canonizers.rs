//! Canonizers: BatchNorm folding keeps outputs and gives the same explanations as a twin
//! model built with the folded weights; residual sums are split by the Norm rule.

use relprop::core::{Conv2dSpec, Rng, Tensor};
use relprop::explain::{explain, record, Composite, Method, Seed, Targets};
use relprop::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
use relprop::zoo::Architecture;

/// A `vgg_small_bn` with random BatchNorm parameters and running statistics.
fn bn_model() -> relprop::zoo::Model {
    let mut m = Architecture::VggSmallBn.build(21);
    let mut rng = Rng::new(5);
    for p in m.params_mut() {
        let n = p.value.numel();
        let shape = p.value.shape().to_vec();
        let values: Option<Vec<f32>> = if p.name.contains(".bn") && p.name.ends_with("running_var")
        {
            Some((0..n).map(|_| rng.uniform(0.5, 2.0)).collect())
        } else if p.name.contains(".bn") {
            Some((0..n).map(|_| rng.uniform(-0.5, 1.5)).collect())
        } else {
            None
        };
        if let Some(v) = values {
            p.value = Tensor::from_vec(v, &shape).unwrap();
        }
    }
    m
}

fn get(m: &dyn Module, name: &str) -> Tensor {
    m.params()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .value
        .clone()
}

/// The twin: the same network without BatchNorm, each conv's weights folded by hand.
fn folded_twin(m: &dyn Module) -> Sequential {
    let mut net = Sequential::new("twin");
    for k in 1..=4 {
        let (w, b) = (
            get(m, &format!("features.conv{k}.weight")),
            get(m, &format!("features.conv{k}.bias")),
        );
        let bn = |s: &str| get(m, &format!("features.bn{k}.{s}"));
        let (g, beta, mean, var) = (
            bn("weight"),
            bn("bias"),
            bn("running_mean"),
            bn("running_var"),
        );
        let c = b.numel();
        let per = w.numel() / c;
        let scale: Vec<f32> = (0..c)
            .map(|o| g.data()[o] / (var.data()[o] + 1e-5).sqrt())
            .collect();
        let wf: Vec<f32> = w
            .data()
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale[i / per])
            .collect();
        let bf: Vec<f32> = (0..c)
            .map(|o| (b.data()[o] - mean.data()[o]) * scale[o] + beta.data()[o])
            .collect();
        let conv = Conv2d::from_params(
            format!("features.conv{k}"),
            Tensor::from_vec(wf, w.shape()).unwrap(),
            Some(Tensor::from_vec(bf, &[c]).unwrap()),
            Conv2dSpec::new(1, 1),
        )
        .unwrap();
        net.push(conv);
        net.push(Relu::new());
        if k % 2 == 0 {
            net.push(MaxPool2d::new(format!("features.pool{}", k / 2), 2, 2, 0));
        }
    }
    net.push(Flatten::new());
    for (name, relu) in [("classifier.fc1", true), ("classifier.fc2", false)] {
        let l = Linear::from_params(
            name,
            get(m, &format!("{name}.weight")),
            Some(get(m, &format!("{name}.bias"))),
        );
        net.push(l.unwrap());
        if relu {
            net.push(Relu::new());
        }
    }
    net
}

#[test]
fn folding_keeps_outputs_and_matches_the_folded_twin() {
    let m = bn_model();
    let twin = folded_twin(&m);
    let x = Tensor::rand_uniform(&[3, 1, 28, 28], 0.0, 1.0, 8);
    let rec = record(&m, &x).unwrap();
    let folded = Composite::epsilon_plus(1e-6).canonize(&rec.tape).unwrap();
    let before = rec.logits();
    let after = folded.value(rec.output).unwrap();
    let e = after.max_rel_diff(before).unwrap();
    assert!(e < 1e-5, "folding changed the logits by {e:.2e}");

    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    for (name, method) in [
        (
            "epsilon-plus",
            Method::Lrp {
                composite: Composite::epsilon_plus(1e-6),
                seed: Seed::OneHot,
            },
        ),
        (
            "alpha2-beta1",
            Method::Lrp {
                composite: Composite::epsilon_alpha2_beta1(1e-6),
                seed: Seed::OneHot,
            },
        ),
        ("sglrp", Method::Sglrp { composite: bdt() }),
    ] {
        let a = explain(&m, &x, &Targets::Class(2), &method)
            .unwrap()
            .relevance;
        let b = explain(&twin, &x, &Targets::Class(2), &method)
            .unwrap()
            .relevance;
        let e = a.max_rel_diff(&b).unwrap();
        assert!(
            e < 1e-5,
            "{name}: canonized BN model and folded twin differ by {e:.2e}"
        );
    }
}

#[test]
fn batchnorm_without_canonizer_is_an_error_naming_the_op() {
    let m = bn_model();
    let x = Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 1);
    let method = Method::Lrp {
        composite: Composite::epsilon_plus(1e-6).without_canonizers(),
        seed: Seed::OneHot,
    };
    let err = explain(&m, &x, &Targets::Class(0), &method)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("batch_norm2d") && err.contains("features.bn"),
        "{err}"
    );
}

#[test]
fn residual_sums_split_relevance_by_the_norm_rule() {
    // Bias-free resnet: relevance is conserved through both residual blocks.
    let mut m = Architecture::ResnetSmall.build(3);
    for p in m.params_mut() {
        if p.name.ends_with(".bias") {
            p.value = Tensor::zeros(p.value.shape());
        }
    }
    let x = Tensor::rand_uniform(&[2, 1, 28, 28], 0.0, 1.0, 4);
    let a = explain(
        &m,
        &x,
        &Targets::Argmax,
        &Method::Lrp {
            composite: Composite::epsilon_plus(1e-9),
            seed: Seed::OneHot,
        },
    )
    .unwrap();
    let add_rows: Vec<_> = a.audit.rows.iter().filter(|r| r.op == "add").collect();
    assert_eq!(add_rows.len(), 2, "{}", a.audit);
    // Inside a block the two branches each hold part of the relevance; every cut through
    // the whole network (the main path and the sums) must hold all of it.
    let on_main_path =
        |l: &str| !l.starts_with("features.block") || !l["features.block".len()..].contains('.');
    for row in a.audit.rows.iter().filter(|r| on_main_path(&r.label)) {
        assert!(
            row.max_error() < 1e-3,
            "{} ({}): error {:.2e}\n{}",
            row.label,
            row.op,
            row.max_error(),
            a.audit
        );
    }
}
