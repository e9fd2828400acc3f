//! `relprop predict` and `relprop export`: the zoo from outside.

use super::error::{in_file, CliError, CliResult};
use super::models::load;
use relprop::core::Tensor;
use relprop::nn::io::{read_npy, write_npy_f32, write_safetensors, Array};
use relprop::nn::state::state_dict;
use relprop::nn::train::predict;
use relprop::zoo::Architecture;
use std::path::Path;

/// Reads a float32 `.npy` of shape `[N, C, H, W]` (or `[C, H, W]`, taken as N = 1) and
/// checks it against the model's input shape; also returns the shape as stored.
pub fn read_input_npy(path: &Path, arch: Architecture) -> CliResult<(Tensor, Vec<usize>)> {
    let array = read_npy(path).map_err(|e| in_file(path, e))?;
    let (shape, data) = match array {
        Array::F32 { shape, data } => (shape, data),
        other => {
            return Err(CliError::input(format!(
                "{}: expected float32 values, found {}",
                path.display(),
                other.dtype()
            )))
        }
    };
    let want = arch.input_shape();
    let stored = shape.clone();
    let shape = match shape.len() {
        3 => vec![1, shape[0], shape[1], shape[2]],
        4 => shape,
        _ => {
            return Err(CliError::input(format!(
                "{}: expected shape [N, {}, {}, {}] or [{}, {}, {}], found {shape:?}",
                path.display(),
                want[0],
                want[1],
                want[2],
                want[0],
                want[1],
                want[2]
            )))
        }
    };
    if shape[1..] != want || shape[0] == 0 {
        return Err(CliError::input(format!(
            "{}: {} takes inputs of shape [N, {}, {}, {}] with N >= 1, found {shape:?}",
            path.display(),
            arch.name(),
            want[0],
            want[1],
            want[2]
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

/// Writes logits `[N, classes]` to `out`, or prints the predicted classes.
pub fn run_predict(
    name: &str,
    weights: Option<&Path>,
    input: &Path,
    out: Option<&Path>,
) -> CliResult {
    let model = load(name, weights)?;
    let (x, _) = read_input_npy(input, model.arch)?;
    let logits = predict(&model, &x, 256)?;
    match out {
        Some(path) => {
            write_npy_f32(path, &logits)?;
            println!("wrote logits {:?} to {}", logits.shape(), path.display());
        }
        None => {
            for (i, class) in logits.argmax(1)?.iter().enumerate() {
                println!("{i}\t{class}");
            }
        }
    }
    Ok(())
}

/// Writes the pretrained weights under their PyTorch `state_dict` names.
pub fn run_export(name: &str, out: &Path) -> CliResult {
    let model = load(name, None)?;
    write_safetensors(out, &state_dict(&model))?;
    println!(
        "wrote {} parameters of {name} to {}",
        model.parameter_count(),
        out.display()
    );
    Ok(())
}
