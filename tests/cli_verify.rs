//! `relprop verify` end to end: a bias-free model conserves relevance at every node (exit
//! 0), the same model with large biases leaks at its affine layers and is named (exit 1),
//! and bad input is exit 2.

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
fn bias_free_models_pass_and_large_biases_fail_naming_the_layer() {
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
        assert_eq!(o.status.code(), Some(1), "{name} {rules}: {out}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        // The message names a leaking affine layer and says it has a bias.
        assert!(
            stderr.contains("relevance is not conserved")
                && (stderr.contains("features.conv") || stderr.contains("classifier.fc"))
                && stderr.contains("has a bias"),
            "{out}"
        );
        assert!(out.contains("FAIL") && out.contains("LEAK (bias)"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tolerance_decides() {
    let dir = scratch("tolerance");
    input(&dir.join("x.npy"), 2);
    weights(Architecture::Mlp, 0.05, &dir.join("small-bias.safetensors"));
    // Small biases leak a little: fine at a loose tolerance, a violation at a strict one.
    let loose = run(
        &dir,
        "mlp",
        "small-bias.safetensors",
        &["--tolerance", "0.5"],
    );
    assert_eq!(loose.status.code(), Some(0), "{}", text(&loose));
    let strict = run(
        &dir,
        "mlp",
        "small-bias.safetensors",
        &["--tolerance", "1e-9"],
    );
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    assert!(
        text(&strict).contains("tolerance 1.0e-9"),
        "{}",
        text(&strict)
    );
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
