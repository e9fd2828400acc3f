//! Agreement with the Zennit reference fixtures (see tests/fixtures/README.md): every method
//! on `mlp`, `lenet5` and `vgg_small`, at the tolerances the fixtures' README sets.

mod common;

use relprop::core::Tensor;
use relprop::explain::{explain, Composite, Method, RecipePath, Seed, Targets};
use relprop::nn::io::{read_safetensors, Array};
use relprop::nn::state::load_state;
use relprop::zoo::{Architecture, Model};

struct Fixture {
    model: Model,
    x: Tensor,
    targets: Vec<usize>,
    arrays: Vec<(String, Array)>,
}

fn fixture(arch: Architecture) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/zennit/{}.safetensors",
        env!("CARGO_MANIFEST_DIR"),
        arch.name()
    );
    let arrays = read_safetensors(&path).expect("fixture file");
    let floats: Vec<(String, Tensor)> = arrays
        .iter()
        .filter_map(|(n, a)| {
            a.clone()
                .into_tensor()
                .ok()
                .filter(|_| a.dtype() == "f32")
                .map(|t| (n.clone(), t))
        })
        .collect();
    let mut model = arch.build(0);
    load_state(&mut model, &floats, true).expect("fixture weights load");
    let x = floats.iter().find(|(n, _)| n == "x").unwrap().1.clone();
    let targets = match &arrays.iter().find(|(n, _)| n == "targets").unwrap().1 {
        Array::I64 { data, .. } => data.iter().map(|&v| v as usize).collect(),
        other => panic!("targets are {}", other.dtype()),
    };
    Fixture {
        model,
        x,
        targets,
        arrays,
    }
}

fn reference(f: &Fixture, name: &str) -> Vec<f64> {
    common::fixture_f64(&f.arrays, name)
}

/// `max |ours - ref| / max |ref|`.
fn rel_error(ours: &Tensor, reference: &[f64]) -> f64 {
    common::rel_error(ours.data(), reference)
}

fn methods() -> Vec<(&'static str, Method, f64)> {
    let (l, h) = (Tensor::scalar(0.0), Tensor::scalar(1.0));
    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    let lrp = |c: Composite| Method::Lrp {
        composite: c,
        seed: Seed::OneHot,
    };
    vec![
        ("gradient", Method::Gradient, 1e-4),
        ("grad_x_input", Method::GradientXInput, 1e-4),
        ("lrp_eps_1e-6", lrp(Composite::epsilon(1e-6)), 1e-3),
        ("lrp_eps_0.25", lrp(Composite::epsilon(0.25)), 1e-4),
        ("epsilon_plus", lrp(Composite::epsilon_plus(1e-6)), 1e-3),
        (
            "epsilon_alpha2_beta1",
            lrp(Composite::epsilon_alpha2_beta1(1e-6)),
            1e-3,
        ),
        (
            "epsilon_gamma_box",
            lrp(Composite::epsilon_gamma_box(l, h, 1e-6)),
            1e-3,
        ),
        ("sglrp", Method::Sglrp { composite: bdt() }, 1e-4),
        ("clrp1", Method::Clrp1 { composite: bdt() }, 1e-4),
        ("clrp2", Method::Clrp2 { composite: bdt() }, 1e-4),
    ]
}

fn check_model(arch: Architecture) {
    let f = fixture(arch);
    let logits = relprop::explain::record(&f.model, &f.x)
        .unwrap()
        .logits()
        .clone();
    let e = rel_error(&logits, &reference(&f, "logits"));
    assert!(e < 1e-4, "{arch}: logits differ by {e:.2e}");
    let mut failures = Vec::new();
    for path in [RecipePath::Fast, RecipePath::Reference] {
        for (name, method, tol) in methods() {
            let a = explain(
                &f.model,
                &f.x,
                &Targets::PerSample(f.targets.clone()),
                &method.with_recipe_path(path),
            )
            .unwrap();
            let e = rel_error(&a.relevance, &reference(&f, &format!("rel.{name}")));
            println!("{arch:>10} {path:?} {name:<22} max rel error {e:.2e} (tolerance {tol:.0e})");
            if e.is_nan() || e >= tol {
                failures.push(format!("{name} ({path:?}): {e:.2e} > {tol:.0e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{arch}: {}", failures.join("; "));
}

#[test]
fn mlp_agrees_with_zennit() {
    check_model(Architecture::Mlp);
}

#[test]
fn lenet5_agrees_with_zennit() {
    check_model(Architecture::Lenet5);
}

#[test]
fn vgg_small_agrees_with_zennit() {
    check_model(Architecture::VggSmall);
}
