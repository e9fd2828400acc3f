//! `--weights` for efficientnet_lite0 in both state-dict layouts: the published one (with
//! BatchNorms, folded as it loads) and a folded one (conv biases, no BatchNorms) give the
//! logits of the folded model; a file that fits neither is refused with exit code 2, the
//! missing parameter named and nothing written. Random weights: no download needed.

mod common;

use common::{relprop, scratch};
use relprop::core::{Rng, Tape, Tensor};
use relprop::nn::io::{read_npy, write_npy_f32, write_safetensors, Array};
use relprop::nn::state::state_dict;
use relprop::nn::{Mode, Module};
use relprop::zoo::efficientnet::{build, fold::fold, BatchNorms};

fn logits_file(path: &std::path::Path) -> Vec<f32> {
    match read_npy(path).unwrap() {
        Array::F32 { data, .. } => data,
        other => panic!("{other:?}"),
    }
}

/// `relprop predict` with `weights` on `input`, or its stderr when it fails.
fn predict(
    weights: &std::path::Path,
    input: &std::path::Path,
    out: &std::path::Path,
) -> Result<Vec<f32>, (Option<i32>, String)> {
    let o = relprop(&[
        "predict",
        "--model",
        "efficientnet_lite0",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    if o.status.success() {
        Ok(logits_file(out))
    } else {
        Err((
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ))
    }
}

#[test]
fn both_layouts_load_and_a_file_that_fits_neither_is_refused() {
    let dir = scratch("efficientnet-layouts");
    // The published layout with non-trivial BatchNorm statistics.
    let mut unfolded = build(BatchNorms::Separate, &mut Rng::new(9)).net;
    for (k, p) in unfolded.params_mut().into_iter().enumerate() {
        if p.name.ends_with(".running_var") || p.name.ends_with(".running_mean") {
            let c = p.value.numel();
            let lo = if p.name.ends_with("var") { 0.1 } else { -0.2 };
            p.value = Tensor::rand_uniform(&[c], lo, 0.4, k as u64);
        }
    }
    let folded = fold(&unfolded).unwrap();
    let x = Tensor::rand_uniform(&[2, 3, 224, 224], 0.0, 1.0, 3);
    let expected = {
        let mut tape = Tape::for_inference();
        let input = tape.leaf(x.clone());
        let y = folded.forward(&mut tape, input, Mode::Eval).unwrap();
        tape.value(y).unwrap().clone()
    };
    let input = dir.join("x.npy");
    write_npy_f32(&input, &x).unwrap();
    let (published, folded_file) = (
        dir.join("published.safetensors"),
        dir.join("folded.safetensors"),
    );
    write_safetensors(&published, &state_dict(&unfolded)).unwrap();
    write_safetensors(&folded_file, &state_dict(&folded)).unwrap();
    for (weights, out) in [(&published, "p.npy"), (&folded_file, "f.npy")] {
        let ours = predict(weights, &input, &dir.join(out)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ours.len(), 2 * 1000);
        let worst = ours
            .iter()
            .zip(expected.data())
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 1e-6 * expected.max_abs(),
            "{}: {worst}",
            weights.display()
        );
    }
    // Folded, without one conv's bias: neither layout fits.
    let mut broken = state_dict(&folded);
    broken.retain(|(n, _)| n != "_blocks.7._project_conv.bias");
    let broken_file = dir.join("broken.safetensors");
    write_safetensors(&broken_file, &broken).unwrap();
    let out = dir.join("b.npy");
    let (code, err) = predict(&broken_file, &input, &out).expect_err("refused");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("neither") && err.contains("_blocks.7._project_conv.bias"),
        "{err}"
    );
    assert!(err.contains("broken.safetensors"), "{err}");
    assert!(!out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
