//! The `relprop` binary on damaged files: exit code 2, never a panic.

use crate::common::*;
use crate::files::*;
use crate::mutate::*;
use relprop::core::{Rng, Tensor};
use relprop::explain::heatmap::write_png_rgb;
use relprop::nn::io::{npy_f32_bytes, npy_i64_bytes, safetensors_bytes, Checkpoint, TrainingMeta};
use relprop::nn::state::state_dict;
use relprop::nn::Module;
use relprop::zoo::Architecture;
use std::path::Path;
use std::process::Output;

/// The exit code must be 0 (the damage was harmless) or 2 (bad input), never a panic
/// (101) or a signal, and a failure must say something.
pub(crate) fn assert_clean_exit(o: &Output, what: &str) {
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 2)),
        "{what}: exit {code:?}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    if code == Some(2) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{what}: {err}"
        );
    }
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_cli_never_panics_on_damaged_files() {
    let dir = scratch("cli");
    let mut rng = Rng::new(2024);
    let x = npy_f32_bytes(
        &[2, 1, 28, 28],
        Tensor::rand_uniform(&[2 * 784], 0.0, 1.0, 1).data(),
    )
    .unwrap();
    let good_x = write(&dir.join("x.npy"), &x);
    let targets = npy_i64_bytes(&[2], &[3, 7]).unwrap();
    let model = Architecture::Lenet5.build(3);
    let st = safetensors_bytes(&state_dict(&model)).unwrap();
    let ckpt = Checkpoint {
        architecture: "lenet5".into(),
        params: state_dict(&model),
        meta: TrainingMeta::default(),
    }
    .to_bytes()
    .unwrap();
    let png = {
        let p = dir.join("seed.png");
        let rgb: Vec<u8> = (0..28 * 28 * 3).map(|i| (i % 251) as u8).collect();
        write_png_rgb(&p, &rgb, 28, 28).unwrap();
        std::fs::read(&p).unwrap()
    };
    let mut runs = 0;

    // Inputs: npy for predict, explain and verify; PNG for explain and verify.
    for k in 0..10 {
        let bytes = mutate(&mut rng, &x, &targets);
        let path = write(&dir.join(format!("x{k}.npy")), &bytes);
        for args in [
            vec!["predict", "--model", "lenet5", "--input", &path],
            vec![
                "explain", "--model", "lenet5", "--method", "lrp", "--input", &path,
            ],
            // Trained weights have biases: a loose tolerance keeps exit 1 (a leak) out.
            vec![
                "verify",
                "--model",
                "lenet5",
                "--tolerance",
                "1e6",
                "--input",
                &path,
            ],
        ] {
            assert_clean_exit(
                &relprop(&args),
                &format!("{} with mutated input {k}", args[0]),
            );
            runs += 1;
        }
    }
    for k in 0..8 {
        let mut bytes = mutate(&mut rng, &png, &png);
        if k % 2 == 0 {
            refresh_png_crcs(&mut bytes);
        }
        let path = write(&dir.join(format!("in{k}.png")), &bytes);
        let o = relprop(&[
            "explain", "--model", "lenet5", "--method", "gradient", "--input", &path,
        ]);
        assert_clean_exit(&o, &format!("explain with mutated PNG {k}"));
        runs += 1;
    }
    // Weights: safetensors and checkpoints (checksum repaired half the time).
    for k in 0..8 {
        let bytes = mutate(&mut rng, &st, &st);
        let path = write(&dir.join(format!("w{k}.safetensors")), &bytes);
        let o = relprop(&[
            "predict",
            "--model",
            "lenet5",
            "--weights",
            &path,
            "--input",
            &good_x,
        ]);
        assert_clean_exit(&o, &format!("predict with mutated safetensors {k}"));
        let mut bytes = mutate(&mut rng, &ckpt, &ckpt);
        if k % 2 == 0 {
            refresh_checkpoint_crc(&mut bytes);
        }
        let path = write(&dir.join(format!("w{k}.ckpt")), &bytes);
        let o = relprop(&[
            "explain",
            "--model",
            "lenet5",
            "--method",
            "sglrp",
            "--weights",
            &path,
            "--input",
            &good_x,
        ]);
        assert_clean_exit(&o, &format!("explain with mutated checkpoint {k}"));
        runs += 2;
    }
    // PyTorch .pth weights, both layouts.
    let pth = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth/lenet5_legacy.pth"),
    )
    .unwrap();
    let zipped = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth/mixed_zip.pth"),
    )
    .unwrap();
    for k in 0..8 {
        let bytes = mutate(&mut rng, if k % 2 == 0 { &pth } else { &zipped }, &pth);
        let path = write(&dir.join(format!("w{k}.pth")), &bytes);
        let o = relprop(&[
            "predict",
            "--model",
            "lenet5",
            "--weights",
            &path,
            "--input",
            &good_x,
        ]);
        assert_clean_exit(&o, &format!("predict with mutated pth {k}"));
        runs += 1;
    }
    // ONNX models (inline weights), read by predict and explain.
    let onnx = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/bn_cnn.onnx"),
    )
    .unwrap();
    let colour_x = npy_f32_bytes(
        &[1, 3, 24, 24],
        Tensor::rand_uniform(&[3 * 24 * 24], 0.0, 1.0, 2).data(),
    )
    .unwrap();
    let colour_x = write(&dir.join("colour.npy"), &colour_x);
    for k in 0..12 {
        let bytes = mutate(&mut rng, &onnx, &onnx);
        let path = write(&dir.join(format!("m{k}.onnx")), &bytes);
        for args in [
            vec!["predict", "--model", &path, "--input", &colour_x],
            vec![
                "explain", "--model", &path, "--method", "sglrp", "--input", &colour_x,
            ],
        ] {
            assert_clean_exit(
                &relprop(&args),
                &format!("{} with mutated ONNX model {k}", args[0]),
            );
            runs += 1;
        }
    }
    // Targets.
    for k in 0..4 {
        let bytes = mutate(&mut rng, &targets, &x);
        let path = write(&dir.join(format!("t{k}.npy")), &bytes);
        let o = relprop(&[
            "explain",
            "--model",
            "lenet5",
            "--method",
            "lrp",
            "--input",
            &good_x,
            "--targets",
            &path,
        ]);
        assert_clean_exit(&o, &format!("explain with mutated targets {k}"));
        runs += 1;
    }
    // NaN payloads: inputs and weights are refused with exit 2.
    let nan_x = npy_f32_bytes(&[1, 1, 28, 28], &[f32::NAN; 784]).unwrap();
    let nan_path = write(&dir.join("nan.npy"), &nan_x);
    let mut nan_model = Architecture::Lenet5.build(3);
    nan_model.params_mut()[0].value = Tensor::full(nan_model.params()[0].value.shape(), f32::NAN);
    let nan_w = write(
        &dir.join("nan.safetensors"),
        &safetensors_bytes(&state_dict(&nan_model)).unwrap(),
    );
    for args in [
        vec!["predict", "--model", "lenet5", "--input", &nan_path],
        vec![
            "explain", "--model", "lenet5", "--method", "lrp", "--input", &nan_path,
        ],
        vec!["verify", "--model", "lenet5", "--input", &nan_path],
        vec![
            "predict",
            "--model",
            "lenet5",
            "--weights",
            &nan_w,
            "--input",
            &good_x,
        ],
    ] {
        let o = relprop(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        runs += 1;
    }
    println!("{runs} CLI runs on damaged files, all exit 0 or 2");
    let _ = std::fs::remove_dir_all(&dir);
}
