//! Hostile command lines and files: each gives exit code 2, one message naming the
//! problem, and no output file, quickly (validation happens before any allocation).

mod common;

use common::{relprop, scratch};
use relprop::core::Tensor;
use relprop::nn::io::write_npy_f32;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Asserts exit code 2, one `error:` line mentioning every one of `needles`, and that
/// `out` was not written.
fn assert_rejected(o: &Output, needles: &[&str], out: &Path) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

/// A lenet5 input [1, 1, 28, 28] filled with `value`.
fn digit_input(dir: &Path, value: f32) -> PathBuf {
    let path = dir.join(format!("x{value}.npy"));
    write_npy_f32(&path, &Tensor::full(&[1, 1, 28, 28], value)).unwrap();
    path
}

#[test]
fn huge_counts_are_rejected_before_allocating() {
    let dir = scratch("reliability-counts");
    let huge = usize::MAX.to_string();
    let csv = dir.join("out.csv");
    let csv_s = csv.to_str().unwrap();
    let o = relprop(&["eval", "discrimination", "--n", &huge, "--csv", csv_s]);
    assert_rejected(&o, &["--n", "100000"], &csv);
    let o = relprop(&["eval", "faithfulness", "--n", &huge, "--csv", csv_s]);
    assert_rejected(&o, &["--n"], &csv);
    let sizes = format!("1,{huge}");
    let o = relprop(&[
        "bench",
        "--models",
        "lenet5",
        "--batch-sizes",
        &sizes,
        "--csv",
        csv_s,
    ]);
    assert_rejected(&o, &["--batch-sizes", "4096"], &csv);
    let ckpt = dir.join("mlp.ckpt");
    let o = relprop(&[
        "train",
        "mlp",
        "--epochs",
        &huge,
        "--out",
        ckpt.to_str().unwrap(),
    ]);
    assert_rejected(&o, &["--epochs", "1000"], &ckpt);

    let x = digit_input(&dir, 0.5);
    let out = dir.join("r.npy");
    let base = [
        "explain",
        "--model",
        "lenet5",
        "--input",
        x.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for (args, needles) in [
        (
            vec!["--method", "integrated-gradients", "--steps", &huge],
            vec!["--steps"],
        ),
        (
            vec!["--method", "smoothgrad", "--steps", "100001"],
            vec!["--steps", "100000"],
        ),
        (
            vec!["--method", "occlusion", "--window", &huge],
            vec!["--window"],
        ),
        (
            vec!["--method", "occlusion", "--stride", "0"],
            vec!["--stride"],
        ),
        (
            vec!["--method", "lrp", "--rules", "epsilon", "--epsilon", "-1"],
            vec!["--epsilon"],
        ),
        (
            vec!["--method", "lrp", "--low", "-inf"],
            vec!["--low", "-inf"],
        ),
        (
            vec!["--method", "lrp", "--high", "nan"],
            vec!["--high", "NaN"],
        ),
    ] {
        let mut all = base.to_vec();
        all.extend(args);
        assert_rejected(&relprop(&all), &needles, &out);
    }
    // The limits are stated where users look for them.
    let help = relprop(&["explain", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("1 to 100000"));
}

#[test]
fn too_many_threads_fall_back_with_a_note() {
    let dir = scratch("reliability-threads");
    let x = digit_input(&dir, 0.5);
    let out = dir.join("logits.npy");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_relprop"))
        .args([
            "predict",
            "--model",
            "lenet5",
            "--input",
            x.to_str().unwrap(),
        ])
        .args(["--out", out.to_str().unwrap()])
        .env("RAYON_NUM_THREADS", "100000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: RAYON_NUM_THREADS=100000"),
        "{stderr}"
    );
    assert!(out.exists());
}

#[test]
fn non_finite_activations_and_statistics_are_errors() {
    let dir = scratch("reliability-finite");
    let out = dir.join("logits.npy");
    let out_s = out.to_str().unwrap();
    // Finite but huge: the activations overflow, and ReLU would hide the NaN.
    let x = digit_input(&dir, 1e38);
    let x_s = x.to_str().unwrap();
    let o = relprop(&[
        "predict", "--model", "lenet5", "--input", x_s, "--out", out_s,
    ]);
    assert_rejected(&o, &["the activations of features.", "not finite"], &out);
    let o = relprop(&[
        "explain", "--model", "lenet5", "--method", "gradient", "--input", x_s, "--out", out_s,
    ]);
    assert_rejected(&o, &["the activations of features.", "not finite"], &out);

    // A BatchNorm layer whose running variance is negative.
    let model = relprop::zoo::Architecture::VggSmallBn.build(0);
    let mut state = relprop::nn::state::state_dict(&model);
    let (name, var) = state
        .iter_mut()
        .find(|(n, _)| n.ends_with(".running_var"))
        .unwrap();
    *var = Tensor::full(var.shape(), -1.0);
    let name = name.clone();
    let weights = dir.join("bn.safetensors");
    relprop::nn::io::write_safetensors(&weights, &state).unwrap();
    let input = dir.join("rgb.npy");
    write_npy_f32(&input, &Tensor::full(&[1, 3, 32, 32], 0.5)).unwrap();
    let o = relprop(&[
        "predict",
        "--model",
        "vgg_small_bn",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_rejected(&o, &[&name, "running variance", "safetensors"], &out);
}

/// A safetensors file holding one float64 tensor.
fn f64_safetensors(path: &Path, name: &str, shape: &[usize]) {
    let numel: usize = shape.iter().product();
    let header = format!(
        r#"{{"{name}":{{"dtype":"F64","shape":{shape:?},"data_offsets":[0,{}]}}}}"#,
        numel * 8
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, numel * 8));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn file_errors_name_the_dtype_format_and_stay_short() {
    let dir = scratch("reliability-files");
    let out = dir.join("logits.npy");
    let out_s = out.to_str().unwrap();
    let x = digit_input(&dir, 0.5);
    let weights = dir.join("f64.safetensors");
    f64_safetensors(&weights, "features.conv1.weight", &[6, 1, 5, 5]);
    let o = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_rejected(
        &o,
        &["features.conv1.weight is stored as F64; relprop reads F32"],
        &out,
    );

    // A header declaring a million dimensions (all 1, so the one value is all the data).
    let dims = "1, ".repeat(1_000_000);
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    while (12 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend((header.len() as u32).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(0.5f32.to_le_bytes());
    let deep = dir.join("deep.npy");
    std::fs::write(&deep, bytes).unwrap();
    let o = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        deep.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_rejected(&o, &["(1000000 dimensions)"], &out);
    assert!(o.stderr.len() < 1000, "{} bytes of message", o.stderr.len());
}

#[test]
fn float64_inputs_are_read_as_float32() {
    // numpy saves float64 unless told otherwise; such an input gives the float32 result.
    let dir = scratch("f64-input");
    let x = relprop::core::Tensor::rand_uniform(&[2, 1, 28, 28], 0.0, 1.0, 9);
    let (x32, x64) = (dir.join("x32.npy"), dir.join("x64.npy"));
    relprop::nn::io::write_npy_f32(&x32, &x).unwrap();
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1, 28, 28), }\n";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    for v in x.data() {
        bytes.extend_from_slice(&f64::from(*v).to_le_bytes());
    }
    std::fs::write(&x64, bytes).unwrap();
    let logits = |input: &std::path::Path, out: &str| {
        let out = dir.join(out);
        let o = relprop(&[
            "predict",
            "--model",
            "lenet5",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        relprop::nn::io::read_tensor(&out).unwrap()
    };
    assert_eq!(logits(&x32, "a.npy").data(), logits(&x64, "b.npy").data());
    std::fs::remove_dir_all(&dir).ok();
}
