//! A mutation run over the command line's argument space: random combinations of every
//! command's options, with values drawn from valid ones, near misses, huge counts,
//! non-finite numbers, garbage, and paths of every kind (missing, a folder, a device, the
//! input itself, bad files). Each run must end by itself with exit code 0 or 2 (1 only for
//! a failed `verify`), never a panic (101) or a signal, print a message when it fails, and
//! leave the working folder exactly as it was when it fails.
//!
//! `RELPROP_FUZZ_CASES` sets the number of runs per test (default 60) for a longer search.

mod common;

use common::{relprop_in, scratch};
use relprop::core::{Rng, Tensor};
use relprop::nn::io::{npy_i64_bytes, write_npy_f32};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Models: zoo names, an exported ONNX file, broken and missing files, junk.
const MODELS: &[&str] = &[
    "lenet5",
    "lenet5",
    "mlp",
    "vgg_small",
    "m.onnx",
    "trunc.onnx",
    "nosuch",
    "",
    "x1.npy",
    "folder",
];
/// Inputs: good batches, a PNG, wrong shapes, non-finite values, broken and odd paths.
const INPUTS: &[&str] = &[
    "x1.npy",
    "x1.npy",
    "x3.npy",
    "digit.png",
    "wrong.npy",
    "huge.npy",
    "nan.npy",
    "t.npy",
    "empty.npy",
    "bad.png",
    "folder",
    "missing.npy",
    "/dev/null",
    "",
];
/// Outputs: new, existing, into a missing folder, a folder, an input, a device.
const OUTPUTS: &[&str] = &[
    "out.npy",
    "out.npy",
    "existing.npy",
    "missing/out.npy",
    "folder",
    "x1.npy",
    "/dev/null",
    "out.png",
    "out.onnx",
    "out.safetensors",
    "",
];
const METHODS: &[&str] = &[
    "gradient",
    "gradient-x-input",
    "smoothgrad",
    "integrated-gradients",
    "grad-cam",
    "occlusion",
    "lrp",
    "sglrp",
    "sglrp-two-pass",
    "clrp1",
    "clrp2",
    "bogus",
    "",
];
const RULES: &[&str] = &[
    "zero",
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "epsilon-gamma-box",
    "bounded-deep-taylor",
    "nope",
];
/// Real numbers: ordinary, edge and invalid.
const REALS: &[&str] = &[
    "0", "1", "1e-6", "-1", "nan", "inf", "-inf", "1e400", "1e38", "abc", "", "0.5",
];
/// Counts: small valid ones, zero, negative, past the limits, past `u64`.
const COUNTS: &[&str] = &[
    "1",
    "2",
    "4",
    "0",
    "-3",
    "100001",
    "99999999999999999999",
    "x",
    "",
];
const CLASSES: &[&str] = &["0", "3", "9", "10", "-1", "18446744073709551616", "x"];

/// One random command line.
fn command_line(rng: &mut Rng) -> Vec<String> {
    let pick = |rng: &mut Rng, pool: &[&str]| pool[rng.below(pool.len())].to_string();
    let mut args: Vec<String> = Vec::new();
    let opt = |rng: &mut Rng, args: &mut Vec<String>, name: &str, pool: &[&str], p: f64| {
        if rng.next_f64() < p {
            args.push(name.to_string());
            args.push(pick(rng, pool));
        }
    };
    let command = [
        "explain", "explain", "explain", "predict", "verify", "info", "export",
    ]
    .into_iter()
    .chain(["eval", "bench", "train", "demo", "nonsense"])
    .collect::<Vec<_>>();
    let c = command[rng.below(command.len())];
    args.push(c.to_string());
    match c {
        "explain" => {
            opt(rng, &mut args, "--model", MODELS, 0.95);
            opt(rng, &mut args, "--input", INPUTS, 0.95);
            opt(rng, &mut args, "--method", METHODS, 0.95);
            opt(rng, &mut args, "--rules", RULES, 0.4);
            opt(rng, &mut args, "--epsilon", REALS, 0.2);
            opt(rng, &mut args, "--low", REALS, 0.15);
            opt(rng, &mut args, "--high", REALS, 0.15);
            opt(rng, &mut args, "--target", CLASSES, 0.2);
            opt(
                rng,
                &mut args,
                "--targets",
                &["t.npy", "x1.npy", "missing.npy"],
                0.1,
            );
            opt(rng, &mut args, "--steps", COUNTS, 0.2);
            opt(rng, &mut args, "--noise", REALS, 0.1);
            opt(rng, &mut args, "--window", COUNTS, 0.15);
            opt(rng, &mut args, "--stride", COUNTS, 0.15);
            opt(rng, &mut args, "--seed", COUNTS, 0.1);
            let layers = ["features.conv2", "classifier.fc1", "nosuch", ""];
            opt(rng, &mut args, "--layer", &layers, 0.1);
            let neurons = ["features.conv2:5", "classifier.fc3:99", "x:1", "conv", ":"];
            opt(rng, &mut args, "--neuron", &neurons, 0.1);
            opt(rng, &mut args, "--cmap", &["bwr", "gray", "nope"], 0.1);
            opt(rng, &mut args, "--out", OUTPUTS, 0.5);
            opt(rng, &mut args, "--heatmap", OUTPUTS, 0.3);
            if rng.next_f64() < 0.2 {
                args.push("--audit".into());
            }
        }
        "predict" | "verify" => {
            opt(rng, &mut args, "--model", MODELS, 0.95);
            opt(rng, &mut args, "--input", INPUTS, 0.95);
            opt(
                rng,
                &mut args,
                "--weights",
                &["w.safetensors", "x1.npy", "missing"],
                0.1,
            );
            if c == "predict" {
                opt(rng, &mut args, "--out", OUTPUTS, 0.6);
            } else {
                opt(rng, &mut args, "--rules", RULES, 0.5);
                opt(rng, &mut args, "--tolerance", REALS, 0.3);
                opt(rng, &mut args, "--target", CLASSES, 0.2);
                opt(rng, &mut args, "--epsilon", REALS, 0.2);
            }
        }
        "info" => args.push(pick(rng, MODELS)),
        "export" => {
            opt(rng, &mut args, "--model", MODELS, 0.9);
            opt(rng, &mut args, "--out", OUTPUTS, 0.9);
            opt(
                rng,
                &mut args,
                "--format",
                &["onnx", "safetensors", "x"],
                0.3,
            );
        }
        "eval" => {
            args.push(pick(rng, &["discrimination", "faithfulness", "nope"]));
            opt(rng, &mut args, "--n", COUNTS, 1.0);
            opt(
                rng,
                &mut args,
                "--methods",
                &["lrp", "gradient,sglrp", "x"],
                0.9,
            );
            opt(rng, &mut args, "--csv", OUTPUTS, 0.3);
        }
        "bench" => {
            opt(
                rng,
                &mut args,
                "--models",
                &["lenet5", "mlp", "nosuch"],
                1.0,
            );
            opt(
                rng,
                &mut args,
                "--batch-sizes",
                &["1", "2,1", "0", "5000", "x"],
                1.0,
            );
            opt(
                rng,
                &mut args,
                "--methods",
                &["forward", "gradient", "nope"],
                1.0,
            );
            let secs = ["0", "0.01", "-1", "nan", "1e9", "inf"];
            opt(rng, &mut args, "--min-seconds", &secs, 1.0);
            opt(rng, &mut args, "--csv", OUTPUTS, 0.3);
        }
        "train" => {
            args.push(pick(rng, &["mlp", "nosuch"]));
            let epochs = ["1", "0", "-1", "1001", "99999999999999999999", "x"];
            opt(rng, &mut args, "--epochs", &epochs, 1.0);
            opt(rng, &mut args, "--out", OUTPUTS, 0.7);
            args.push("--quiet".into());
        }
        "demo" => args.extend(["--out".into(), pick(rng, &["x1.npy", "/dev/null", ""])]),
        _ => {}
    }
    if rng.next_f64() < 0.05 {
        args.push(pick(rng, &["--nope", "extra", "--", "-"]));
    }
    args
}

/// Every regular file under `dir` with its bytes: what a failed run must leave unchanged.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path.clone());
                files.insert(format!("{name}/"), Vec::new());
            } else {
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Puts `dir` back into the state of `before` (after a run that was allowed to write).
fn restore(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    for (name, _) in snapshot(dir) {
        if !before.contains_key(&name) {
            let path = dir.join(name.trim_end_matches('/'));
            if name.ends_with('/') {
                std::fs::remove_dir_all(&path).ok();
            } else {
                std::fs::remove_file(&path).ok();
            }
        }
    }
    for (name, bytes) in before {
        if !name.ends_with('/') && std::fs::read(dir.join(name)).ok().as_ref() != Some(bytes) {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// The folder every run works in, with the files the value pools name.
fn workspace(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let digit = |seed| Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, seed);
    write_npy_f32(dir.join("x1.npy"), &digit(1)).unwrap();
    write_npy_f32(
        dir.join("x3.npy"),
        &Tensor::rand_uniform(&[3, 1, 28, 28], 0.0, 1.0, 2),
    )
    .unwrap();
    write_npy_f32(dir.join("existing.npy"), &digit(3)).unwrap();
    write_npy_f32(dir.join("wrong.npy"), &Tensor::zeros(&[1, 1, 5, 5])).unwrap();
    write_npy_f32(dir.join("huge.npy"), &Tensor::full(&[1, 1, 28, 28], 1e30)).unwrap();
    write_npy_f32(
        dir.join("nan.npy"),
        &Tensor::full(&[1, 1, 28, 28], f32::NAN),
    )
    .unwrap();
    std::fs::write(dir.join("t.npy"), npy_i64_bytes(&[3], &[1, 2, 3]).unwrap()).unwrap();
    std::fs::write(dir.join("empty.npy"), b"").unwrap();
    std::fs::write(dir.join("bad.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    let grey = relprop::explain::heatmap::grey_rgb(digit(4).data(), 28, 28);
    let png = relprop::explain::heatmap::png_rgb_bytes(&grey, 28, 28).unwrap();
    std::fs::write(dir.join("digit.png"), png).unwrap();
    let o = relprop_in(&dir, &["export", "--model", "lenet5", "--out", "m.onnx"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = relprop_in(
        &dir,
        &["export", "--model", "lenet5", "--out", "w.safetensors"],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let onnx = std::fs::read(dir.join("m.onnx")).unwrap();
    std::fs::write(dir.join("trunc.onnx"), &onnx[..onnx.len() / 2]).unwrap();
    dir
}

/// Runs `cases` random command lines from `seed` and checks each against the contract.
fn fuzz(name: &str, seed: u64) {
    let cases = std::env::var("RELPROP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let dir = workspace(name);
    let before = snapshot(&dir);
    let mut rng = Rng::new(seed);
    let mut codes = BTreeMap::new();
    for _ in 0..cases {
        let args = command_line(&mut rng);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = common::relprop_in_within(&dir, &argv, Duration::from_secs(300))
            .unwrap_or_else(|| panic!("relprop {args:?} did not end within 300 s"));
        let err = String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        *codes.entry(code).or_insert(0usize) += 1;
        let allowed = match code {
            Some(0) | Some(2) => true,
            Some(1) => args[0] == "verify",
            _ => false,
        };
        assert!(allowed, "relprop {args:?} ended with {:?}: {err}", o.status);
        assert!(!err.contains("panicked"), "relprop {args:?}: {err}");
        if code != Some(0) {
            assert!(!err.trim().is_empty(), "relprop {args:?} failed silently");
            let after = snapshot(&dir);
            assert_eq!(
                after.keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>(),
                "relprop {args:?} failed ({err}) and left files behind or removed some"
            );
            for (file, bytes) in &before {
                assert!(
                    &after[file] == bytes,
                    "relprop {args:?} failed ({err}) and changed {file}"
                );
            }
        }
        restore(&dir, &before);
        assert!(std::fs::metadata("/dev/null")
            .map(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()))
            .unwrap_or(false));
    }
    // The pools reach both outcomes: the run explores successes as well as refusals.
    assert!(codes.get(&Some(0)).copied().unwrap_or(0) > 0, "{codes:?}");
    assert!(codes.get(&Some(2)).copied().unwrap_or(0) > 0, "{codes:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn random_command_lines_end_cleanly_first_half() {
    fuzz("argfuzz-a", 11);
}

#[test]
fn random_command_lines_end_cleanly_second_half() {
    fuzz("argfuzz-b", 29);
}
