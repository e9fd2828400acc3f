//! Reading a model input from a `.npy` array or a greyscale PNG, and writing outputs.

use super::error::{in_file, CliError, CliResult};
use super::models::{load_any, AnyModel};
use super::predict::read_input_npy;
use clap::Args;
use relprop::core::Tensor;
use relprop::explain::heatmap::{png_dimensions, read_png_grey, read_png_rgb};
use relprop::nn::io::{read_capped, read_npy, Array};

/// The largest PNG input read (64 MiB): far above any image of a model's input size.
const MAX_PNG_BYTES: u64 = 64 << 20;
use std::path::{Path, PathBuf};

/// The model and input that `relprop explain` and `relprop verify` take.
#[derive(Args, Debug)]
pub struct ModelInput {
    /// A zoo model's name, or the path of an .onnx file.
    #[arg(long)]
    pub model: String,
    /// Weights: a .safetensors or PyTorch .pth file with PyTorch names, or a relprop checkpoint.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Float32 .npy [N, C, H, W] or [C, H, W], or a PNG of the model's input size.
    #[arg(long)]
    pub input: PathBuf,
}

impl ModelInput {
    /// Loads the model, then reads the input and checks it against the model's shape.
    pub fn load(&self) -> CliResult<(Input, AnyModel)> {
        let model = load_any(&self.model, self.weights.as_deref())?;
        let input = read_input(&self.input, &model)?;
        Ok((input, model))
    }
}

/// An input batch, and the shape the user gave it in (outputs are written in that shape).
pub struct Input {
    /// `[N, C, H, W]`.
    pub batch: Tensor,
    /// The shape as read from the file.
    pub shape: Vec<usize>,
}

/// Reads `.npy` (`[N, C, H, W]` or `[C, H, W]` float32) or a PNG of the model's input size.
pub fn read_input(path: &Path, model: &AnyModel) -> CliResult<Input> {
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let want = model.input_shape();
    if !is_png {
        let (batch, shape) = read_input_npy(path, want.as_deref(), model.name())?;
        return Ok(Input { batch, shape });
    }
    let Some(&[c, want_h, want_w]) = want.as_deref() else {
        return Err(CliError::input(format!(
            "{}: {} does not fix its input size, give a .npy array",
            path.display(),
            model.name()
        )));
    };
    if c != 1 && c != 3 {
        return Err(CliError::input(format!(
            "{}: {} takes {c}-channel inputs; PNG input is for 1- and 3-channel models, give a .npy array",
            path.display(),
            model.name()
        )));
    }
    let bytes = read_capped(path, MAX_PNG_BYTES).map_err(|e| in_file(path, e))?;
    // The declared canvas is compared with the model's input before any pixel is decoded.
    let (h, w) =
        png_dimensions(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    if (h, w) != (want_h, want_w) {
        return Err(CliError::input(format!(
            "{}: the image is {w}x{h} pixels but {} takes {want_w}x{want_h} images",
            path.display(),
            model.name()
        )));
    }
    let read = if c == 1 { read_png_grey } else { read_png_rgb };
    let (pixels, h, w) =
        read(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    if (h, w) != (want_h, want_w) {
        return Err(CliError::input(format!(
            "{}: the image is {w}x{h} pixels but {} takes {want_w}x{want_h} images",
            path.display(),
            model.name()
        )));
    }
    let batch = Tensor::from_vec(pixels, &[1, c, h, w])?;
    Ok(Input {
        shape: batch.shape().to_vec(),
        batch,
    })
}

/// Reads `--targets`: an int64 `.npy` with one class per sample.
pub fn read_targets(path: &Path, n: usize) -> CliResult<Vec<usize>> {
    let values = match read_npy(path).map_err(|e| in_file(path, e))? {
        Array::I64 { data, .. } => data,
        other => {
            return Err(CliError::input(format!(
                "{}: targets must be int64, found {}",
                path.display(),
                other.dtype()
            )))
        }
    };
    if values.len() != n {
        return Err(CliError::input(format!(
            "{}: {} targets for {n} samples",
            path.display(),
            values.len()
        )));
    }
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| CliError::input(format!("{}: negative target {v}", path.display())))
        })
        .collect()
}
