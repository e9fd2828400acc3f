//! `relprop verify` end to end: bias-free models conserve relevance at every node, large
//! biases are reported as absorbed but are no leak (exit 0), every zoo model and every
//! ONNX fixture passes at the default tolerance with the default rules, the tolerance
//! decides (exit 1 names the nodes), and bad input is exit 2. A rule that creates or loses
//! relevance is caught by the library's own test (`explain::verify`).

mod common;

use common::{relprop, scratch};
use relprop::core::Tensor;
use relprop::nn::io::{write_npy_f32, write_safetensors};
use relprop::nn::state::state_dict;
use relprop::nn::Module;
use relprop::zoo::Architecture;
use std::path::Path;
use std::process::Output;

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `arch` with random weights and every bias set to `bias`, written as safetensors.
fn weights(arch: Architecture, bias: f32, path: &Path) {
    let mut m = arch.build(7);
    for p in m.params_mut() {
        if p.name.ends_with(".bias") {
            p.value = Tensor::full(p.value.shape(), bias);
        }
    }
    write_safetensors(path, &state_dict(&m)).unwrap();
}

fn input(path: &Path, n: usize) {
    write_npy_f32(path, &Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, 3)).unwrap();
}

fn run(dir: &Path, model: &str, weights: &str, extra: &[&str]) -> Output {
    let (w, x) = (dir.join(weights), dir.join("x.npy"));
    let mut args = vec![
        "verify",
        "--model",
        model,
        "--weights",
        w.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    relprop(&args)
}

#[test]
fn bias_free_models_pass_and_large_biases_are_absorbed_not_leaks() {
    let dir = scratch("models");
    input(&dir.join("x.npy"), 3);
    for (arch, rules) in [
        (Architecture::Lenet5, "epsilon-plus"),
        (Architecture::Lenet5, "zero"),
        (Architecture::Mlp, "epsilon"),
        (Architecture::ResnetSmall, "epsilon-plus"),
    ] {
        let name = arch.name();
        weights(arch, 0.0, &dir.join(format!("{name}-free.safetensors")));
        weights(arch, 5.0, &dir.join(format!("{name}-biased.safetensors")));

        let free = format!("{name}-free.safetensors");
        let o = run(&dir, name, &free, &["--rules", rules]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name} {rules}: {out}");
        assert!(
            out.contains("PASS") && out.contains("tolerance 1.0e-3"),
            "{out}"
        );
        assert!(out.contains("biases absorb relevance"), "{out}");

        let biased = format!("{name}-biased.safetensors");
        let o = run(&dir, name, &biased, &["--rules", rules, "--target", "3"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name} {rules}: {out}");
        // The affine layers are flagged as holding a bias, and their share is shown.
        assert!(out.contains("PASS") && out.contains("| bias |"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tolerance_decides() {
    let dir = scratch("tolerance");
    input(&dir.join("x.npy"), 2);
    weights(Architecture::Mlp, 0.05, &dir.join("small-bias.safetensors"));
    // Float rounding is all that is left: fine at the default, a violation at zero.
    let default = run(&dir, "mlp", "small-bias.safetensors", &[]);
    assert_eq!(default.status.code(), Some(0), "{}", text(&default));
    let strict = run(&dir, "mlp", "small-bias.safetensors", &["--tolerance", "0"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        text(&strict).contains("tolerance 0.0e0")
            && stderr.contains("relevance is not conserved")
            && stderr.contains("classifier.fc"),
        "{}",
        text(&strict)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every zoo model (embedded weights, real test digits) and every ONNX fixture passes at
/// the default tolerance with the default rules.
#[test]
fn trained_zoo_models_and_onnx_fixtures_pass_by_default() {
    let dir = scratch("trained");
    let data = relprop::zoo::digits::load().unwrap();
    for arch in relprop::zoo::ALL {
        let [c, h, w] = arch.input_shape();
        let x = if arch == Architecture::Multidigit {
            let mut gen = relprop::zoo::pairs::DigitPairGenerator::new(
                data,
                relprop::zoo::digits::Split::Test,
                5,
            );
            let imgs: Vec<f32> = gen.batch(4).into_iter().flat_map(|c| c.image).collect();
            Tensor::from_vec(imgs, &[4, c, h, w]).unwrap()
        } else {
            let imgs: Vec<f32> = data.test_indices()[..4]
                .iter()
                .flat_map(|&i| data.image_f32(i))
                .collect();
            Tensor::from_vec(imgs, &[4, c, h, w]).unwrap()
        };
        let path = dir.join(format!("{}.npy", arch.name()));
        write_npy_f32(&path, &x).unwrap();
        let o = relprop(&[
            "verify",
            "--model",
            arch.name(),
            "--input",
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", arch.name(), text(&o));
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let model = entry.unwrap().path();
        if model.extension().is_none_or(|e| e != "onnx") {
            continue;
        }
        let cases = relprop::nn::io::read_safetensors(model.with_extension("safetensors")).unwrap();
        let x = cases
            .into_iter()
            .find(|(n, _)| n == "x")
            .unwrap()
            .1
            .into_tensor()
            .unwrap();
        let path = dir.join("onnx-x.npy");
        write_npy_f32(&path, &x).unwrap();
        let o = relprop(&[
            "verify",
            "--model",
            model.to_str().unwrap(),
            "--input",
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            model.display(),
            text(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_exit_2() {
    let dir = scratch("bad");
    input(&dir.join("x.npy"), 1);
    weights(Architecture::Lenet5, 0.0, &dir.join("w.safetensors"));
    write_npy_f32(dir.join("wrong.npy"), &Tensor::zeros(&[1, 1, 20, 20])).unwrap();
    std::fs::write(dir.join("garbage.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();
    let (x, w) = (dir.join("x.npy"), dir.join("w.safetensors"));
    let (x, w) = (x.to_str().unwrap(), w.to_str().unwrap());
    let wrong = dir.join("wrong.npy");
    let garbage = dir.join("garbage.npy");
    let missing = dir.join("missing.npy");
    let base = |input: &str| -> Vec<String> {
        [
            "verify",
            "--model",
            "lenet5",
            "--weights",
            w,
            "--input",
            input,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("wrong input shape", base(wrong.to_str().unwrap())),
        ("garbage input", base(garbage.to_str().unwrap())),
        ("missing input", base(missing.to_str().unwrap())),
        ("unknown model", {
            let mut a = base(x);
            a[2] = "nonet".into();
            a
        }),
        ("unknown rules", {
            let mut a = base(x);
            a.extend(["--rules".into(), "nope".into()]);
            a
        }),
        ("negative tolerance", {
            let mut a = base(x);
            a.extend(["--tolerance".into(), "-1".into()]);
            a
        }),
        ("NaN tolerance", {
            let mut a = base(x);
            a.extend(["--tolerance".into(), "NaN".into()]);
            a
        }),
        ("target out of range", {
            let mut a = base(x);
            a.extend(["--target".into(), "10".into()]);
            a
        }),
        ("missing --input", base(x)[..5].to_vec()),
    ];
    for (what, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = relprop(&args);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        assert!(!o.stderr.is_empty(), "{what}: no message");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn embedded_weights_and_png_input_work() {
    // Trained weights have biases: the command runs and reports, whatever the verdict.
    let dir = scratch("png");
    let png = dir.join("digit.png");
    let grey: Vec<u8> = (0..28 * 28).map(|i| ((i * 7) % 256) as u8).collect();
    let rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    relprop::explain::heatmap::write_png_rgb(&png, &rgb, 28, 28).unwrap();
    let o = relprop(&[
        "verify",
        "--model",
        "lenet5",
        "--input",
        png.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{out}");
    assert!(
        out.contains("features.conv1") && out.contains("classifier.fc3"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
