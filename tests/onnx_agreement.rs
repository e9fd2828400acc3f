//! Agreement with PyTorch + Zennit on ONNX models that are not in the zoo
//! (tests/fixtures/onnx, see the README there): logits and every method, through the
//! library and through `relprop predict` / `relprop explain`.

mod common;

use common::rel_error;
use relprop::core::Tensor;
use relprop::explain::{explain, Composite, Method, RecipePath, Seed, Targets};
use relprop::nn::io::{read_safetensors, read_tensor, write_npy_f32, write_npy_i64, Array};
use relprop::onnx::OnnxNet;
use std::path::PathBuf;

/// The public fixtures, then more made by `scripts/make_onnx_extra.py` (other sizes, class
/// counts, seeds and exporters).
const CASES: [&str; 10] = [
    "bn_cnn",
    "small_resnet",
    "mobile_net",
    "strided_legacy",
    "strided_dynamo",
    "wide_resnet_legacy",
    "wide_resnet_dynamo",
    "mobile_net_legacy",
    "dilated_dynamo",
    "bn_cnn_dynamo",
];

fn dir() -> PathBuf {
    PathBuf::from(format!(
        "{}/tests/fixtures/onnx",
        env!("CARGO_MANIFEST_DIR")
    ))
}

struct Case {
    arrays: Vec<(String, Array)>,
}

impl Case {
    fn load(name: &str) -> Case {
        let arrays = read_safetensors(dir().join(format!("{name}.safetensors"))).expect("fixture");
        Case { arrays }
    }
    fn floats(&self, name: &str) -> Vec<f64> {
        common::fixture_f64(&self.arrays, name)
    }
    fn x(&self) -> Tensor {
        let a = &self.arrays.iter().find(|(n, _)| n == "x").unwrap().1;
        a.clone().into_tensor().unwrap()
    }
    fn targets(&self) -> Vec<usize> {
        match &self.arrays.iter().find(|(n, _)| n == "targets").unwrap().1 {
            Array::I64 { data, .. } => data.iter().map(|&v| v as usize).collect(),
            other => panic!("targets are {}", other.dtype()),
        }
    }
}

/// The fixture methods: (fixture name, library method, CLI method, CLI rules, tolerance).
fn methods() -> Vec<(
    &'static str,
    Method,
    &'static str,
    Option<&'static str>,
    f64,
)> {
    let (l, h) = (Tensor::scalar(0.0), Tensor::scalar(1.0));
    let lrp = |c: Composite| Method::Lrp {
        composite: c,
        seed: Seed::OneHot,
    };
    vec![
        ("gradient", Method::Gradient, "gradient", None, 1e-4),
        (
            "epsilon_plus",
            lrp(Composite::epsilon_plus(1e-6)),
            "lrp",
            Some("epsilon-plus"),
            1e-3,
        ),
        (
            "epsilon_alpha2_beta1",
            lrp(Composite::epsilon_alpha2_beta1(1e-6)),
            "lrp",
            Some("epsilon-alpha2-beta1"),
            1e-3,
        ),
        (
            "epsilon_gamma_box",
            lrp(Composite::epsilon_gamma_box(l.clone(), h.clone(), 1e-6)),
            "lrp",
            Some("epsilon-gamma-box"),
            1e-3,
        ),
        (
            "sglrp",
            Method::Sglrp {
                composite: Composite::bounded_deep_taylor(l, h),
            },
            "sglrp",
            None,
            1e-3,
        ),
    ]
}

fn check_library(name: &str) {
    let case = Case::load(name);
    let net = OnnxNet::load(&dir().join(format!("{name}.onnx"))).expect("import");
    let x = case.x();
    let logits = relprop::explain::record(&net, &x).unwrap().logits().clone();
    let e = rel_error(logits.data(), &case.floats("logits"));
    assert!(e < 1e-4, "{name}: logits differ by {e:.2e}");
    let mut failures = Vec::new();
    for path in [RecipePath::Fast, RecipePath::Reference] {
        for (m, method, _, _, tol) in methods() {
            let method = method.with_recipe_path(path);
            let a = explain(&net, &x, &Targets::PerSample(case.targets()), &method)
                .unwrap_or_else(|err| panic!("{name} {m}: {err}"));
            let e = rel_error(a.relevance.data(), &case.floats(&format!("rel.{m}")));
            println!("{name:>13} {path:?} {m:<22} max rel error {e:.2e} (tolerance {tol:.0e})");
            if e.is_nan() || e >= tol {
                failures.push(format!("{m} ({path:?}): {e:.2e} >= {tol:.0e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{name}: {}", failures.join("; "));
}

#[test]
fn bn_cnn_agrees_with_zennit() {
    check_library("bn_cnn");
}

#[test]
fn small_resnet_agrees_with_zennit() {
    check_library("small_resnet");
}

#[test]
fn mobile_net_agrees_with_zennit() {
    check_library("mobile_net");
}

#[test]
fn more_exports_agree_with_zennit() {
    for name in &CASES[3..] {
        check_library(name);
    }
}

/// The command-line contract: `predict` writes the logits, `explain` every method's map.
#[test]
fn the_binary_agrees_with_zennit_on_every_case() {
    let tmp = common::scratch("onnx-agreement");
    for name in CASES {
        let case = Case::load(name);
        let model = dir().join(format!("{name}.onnx"));
        let (x, t) = (
            tmp.join(format!("{name}-x.npy")),
            tmp.join(format!("{name}-t.npy")),
        );
        write_npy_f32(&x, &case.x()).unwrap();
        let targets: Vec<i64> = case.targets().iter().map(|&v| v as i64).collect();
        write_npy_i64(&t, &[targets.len()], &targets).unwrap();
        let logits = tmp.join(format!("{name}-logits.npy"));
        let out = common::relprop(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--out",
            logits.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{name} predict: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = read_tensor(&logits).unwrap();
        let e = rel_error(got.data(), &case.floats("logits"));
        assert!(e < 1e-4, "{name}: predicted logits differ by {e:.2e}");
        for (m, _, cli, rules, tol) in methods() {
            let r = tmp.join(format!("{name}-{m}.npy"));
            let mut args = vec![
                "explain",
                "--model",
                model.to_str().unwrap(),
                "--input",
                x.to_str().unwrap(),
                "--targets",
                t.to_str().unwrap(),
                "--method",
                cli,
                "--out",
                r.to_str().unwrap(),
            ];
            if let Some(rules) = rules {
                args.extend(["--rules", rules]);
            }
            let out = common::relprop(&args);
            assert!(
                out.status.success(),
                "{name} {m}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got = read_tensor(&r).unwrap();
            assert_eq!(
                got.shape(),
                case.x().shape(),
                "{name} {m}: the map has the input's shape"
            );
            let e = rel_error(got.data(), &case.floats(&format!("rel.{m}")));
            assert!(e < tol, "{name} {m}: {e:.2e} >= {tol:.0e}");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
