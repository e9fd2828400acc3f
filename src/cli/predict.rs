//! `relprop predict` and `relprop export`: the zoo from outside.

use super::error::{in_file, CliError, CliResult};
use super::input::read_input;
use super::models::{load, load_any, AnyModel};
use relprop::core::Tensor;
use relprop::explain::batching::chunk_len;
use relprop::nn::io::{
    check_outputs, read_npy, shape_text, write_npy_f32, write_safetensors, Array,
};
use relprop::nn::state::state_dict;
use relprop::nn::train::predict;
use relprop::onnx::writer::{write_model, OPSET};
use std::path::Path;

/// Reads a float32 (or float64, converted) `.npy` of shape `[N, C, H, W]` (or `[C, H, W]`, taken as N = 1) and
/// checks it against the model's input shape `want` (`[C, H, W]`, any when unknown); also
/// returns the shape as stored.
pub fn read_input_npy(
    path: &Path,
    want: Option<&[usize]>,
    model: &str,
) -> CliResult<(Tensor, Vec<usize>)> {
    let array = read_npy(path).map_err(|e| in_file(path, e))?;
    let (shape, data) = match array {
        Array::F32 { shape, data } => (shape, data),
        // numpy's default float type: converted (what leaves f32's range becomes infinite
        // and is refused as non-finite below).
        Array::F64 { shape, data } => (shape, data.into_iter().map(|v| v as f32).collect()),
        other => {
            return Err(CliError::input(format!(
                "{}: expected float32 or float64 values, found {}",
                path.display(),
                other.dtype()
            )))
        }
    };
    let dims = |w: Option<&[usize]>| match w {
        Some(w) => w
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        None => "C, H, W".to_string(),
    };
    let stored = shape.clone();
    let shape = match shape.len() {
        3 => vec![1, shape[0], shape[1], shape[2]],
        4 => shape,
        _ => {
            return Err(CliError::input(format!(
                "{}: expected shape [N, {d}] or [{d}], found {}",
                path.display(),
                shape_text(&shape),
                d = dims(want)
            )))
        }
    };
    if want.is_some_and(|w| shape[1..] != *w) || shape[0] == 0 {
        return Err(CliError::input(format!(
            "{}: {model} takes inputs of shape [N, {}] with N >= 1, found {}",
            path.display(),
            dims(want),
            shape_text(&shape)
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(CliError::input(format!(
            "{}: the input contains NaN or infinite values",
            path.display()
        )));
    }
    Ok((Tensor::from_vec(data, &shape)?, stored))
}

/// Samples per forward pass of `predict`: batches of about 4 Mi input values (256 digits),
/// but samples that `explain` takes one at a time (photos) one at a time here too, which
/// `predict` then runs side by side, one per thread.
pub fn predict_chunk(x: &Tensor) -> usize {
    if chunk_len(x) == 1 {
        return 1;
    }
    let per_sample = x.shape()[1..].iter().product::<usize>().max(1);
    ((1 << 22) / per_sample).clamp(1, 256)
}

/// Writes the raw logits `[N, classes]` to `out`, or prints the predicted classes (for an
/// ImageNet model the top five with names and probabilities).
pub fn run_predict(
    name: &str,
    weights: Option<&Path>,
    input: &Path,
    out: Option<&Path>,
) -> CliResult {
    if let Some(out) = out {
        check_outputs(&[out], &[input])?;
    }
    let model = load_any(name, weights)?;
    let x = read_input(input, &model)?.batch;
    let logits = predict(model.module(), &x, predict_chunk(&x))?;
    let named = matches!(&model, AnyModel::Zoo(m) if !m.arch.is_embedded());
    match out {
        Some(path) => {
            // Said before writing: a closed stdout then fails before any file is written.
            outln!("writing logits {:?} to {}", logits.shape(), path.display());
            write_npy_f32(path, &logits)?;
        }
        None if named => print_top5(&logits)?,
        None => {
            for (i, class) in logits.argmax(1)?.iter().enumerate() {
                outln!("{i}\t{class}");
            }
        }
    }
    Ok(())
}

/// Prints each sample's five most probable ImageNet classes with their softmax
/// probabilities, one `sample rank class probability name` line each.
fn print_top5(logits: &Tensor) -> CliResult {
    let classes = logits.shape()[1];
    for (i, row) in logits.data().chunks(classes).enumerate() {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let exp: Vec<f64> = row.iter().map(|&v| f64::from(v - max).exp()).collect();
        let total: f64 = exp.iter().sum();
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]));
        for (rank, &c) in order.iter().take(5).enumerate() {
            let name = relprop::zoo::imagenet::class_name(c).unwrap_or("?");
            outln!("{i}\t{}\t{c}\t{:.4}\t{name}", rank + 1, exp[c] / total);
        }
    }
    Ok(())
}

/// What `relprop export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    /// The parameters under their PyTorch `state_dict` names.
    Safetensors,
    /// The whole model: graph and parameters.
    Onnx,
}

/// The format asked for, or the one `out`'s extension implies (`.onnx`: ONNX).
fn export_format(format: Option<&str>, out: &Path) -> CliResult<ExportFormat> {
    match format {
        Some("safetensors") => Ok(ExportFormat::Safetensors),
        Some("onnx") => Ok(ExportFormat::Onnx),
        Some(other) => Err(CliError::input(format!(
            "unknown export format `{other}` (expected safetensors or onnx)"
        ))),
        None if out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx")) =>
        {
            Ok(ExportFormat::Onnx)
        }
        None => Ok(ExportFormat::Safetensors),
    }
}

/// Writes the pretrained weights under their PyTorch `state_dict` names, or the whole
/// model as an `.onnx` file with a dynamic batch.
pub fn run_export(name: &str, out: &Path, format: Option<&str>) -> CliResult {
    let format = export_format(format, out)?;
    check_outputs(&[out], &[])?;
    let model = load(name, None)?;
    match format {
        ExportFormat::Safetensors => {
            outln!(
                "writing {} parameters of {name} to {}",
                model.parameter_count(),
                out.display()
            );
            write_safetensors(out, &state_dict(&model))?;
        }
        ExportFormat::Onnx => {
            let shape = model.arch.input_shape();
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            outln!(
                "writing {name} as ONNX (opset {OPSET}, input [batch, {}], output logits) to {}",
                dims.join(", "),
                out.display()
            );
            write_model(out, &model, &shape, name).map_err(|e| CliError::input(e.to_string()))?;
        }
    }
    Ok(())
}
