//! Reading a model input from a `.npy` array or a greyscale PNG, and writing outputs.

use super::error::{in_file, CliError, CliResult};
use super::models::{load_any, AnyModel};
use super::predict::read_input_npy;
use clap::Args;
use relprop::core::Tensor;
use relprop::explain::heatmap::{png_dimensions, read_png_grey, read_png_rgb};
use relprop::nn::io::{read_capped, read_npy, Array};

/// The largest PNG input read (64 MiB): far above any image of a model's input size.
pub const MAX_PNG_BYTES: u64 = 64 << 20;
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
    /// Float32 (or float64) .npy [N, C, H, W] or [C, H, W], a PNG (or for 3-channel models a
    /// JPEG) of the model's input size; for efficientnet_lite0 a photo of any size (resized
    /// and cropped).
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

/// Reads `.npy` (`[N, C, H, W]` or `[C, H, W]` float32), a PNG of the model's input size
/// (or a JPEG for a 3-channel model), or for the ImageNet model a PNG or JPEG photo of any
/// size (see [`read_photo`]).
pub fn read_input(path: &Path, model: &AnyModel) -> CliResult<Input> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_png = ext.as_deref() == Some("png");
    let is_jpeg = matches!(ext.as_deref(), Some("jpg" | "jpeg"));
    let want = model.input_shape();
    if let (true, Some(&[3, h, w])) = (is_png || is_jpeg, want.as_deref()) {
        // Resizing is the ImageNet model's own evaluation transform; other models get the
        // image as it is, so it must already have their input size.
        let resize = matches!(model, AnyModel::Zoo(m) if !m.arch.is_embedded());
        return read_photo(path, model.name(), [h, w], resize);
    }
    if is_jpeg {
        return Err(CliError::input(format!(
            "{}: JPEG input is for 3-channel models; {} takes a .npy array or a PNG",
            path.display(),
            model.name()
        )));
    }
    if !is_png {
        let (batch, shape) = read_input_npy(path, want.as_deref(), model.name())?;
        return Ok(Input { batch, shape });
    }
    let bytes = read_capped(path, MAX_PNG_BYTES).map_err(|e| in_file(path, e))?;
    let batch = png_batch(&bytes, model, &path.display().to_string())?;
    Ok(Input {
        shape: batch.shape().to_vec(),
        batch,
    })
}

/// Decodes a PNG of the model's input size into a batch `[1, C, H, W]` (greyscale for a
/// 1-channel model, RGB for a 3-channel one); `source` names the image in messages. The
/// declared canvas is compared with the model's input before any pixel is decoded.
pub fn png_batch(bytes: &[u8], model: &AnyModel, source: &str) -> CliResult<Tensor> {
    let Some(&[c, want_h, want_w]) = model.input_shape().as_deref() else {
        return Err(CliError::input(format!(
            "{source}: {} does not fix its input size, give a .npy array",
            model.name()
        )));
    };
    if c != 1 && c != 3 {
        return Err(CliError::input(format!(
            "{source}: {} takes {c}-channel inputs; PNG input is for 1- and 3-channel models, give a .npy array",
            model.name()
        )));
    }
    let wrong_size = |h: usize, w: usize| {
        CliError::input(format!(
            "{source}: the image is {w}x{h} pixels but {} takes {want_w}x{want_h} images",
            model.name()
        ))
    };
    let (h, w) = png_dimensions(bytes).map_err(|e| CliError::input(format!("{source}: {e}")))?;
    if (h, w) != (want_h, want_w) {
        return Err(wrong_size(h, w));
    }
    let read = if c == 1 { read_png_grey } else { read_png_rgb };
    let (pixels, h, w) = read(bytes).map_err(|e| CliError::input(format!("{source}: {e}")))?;
    if (h, w) != (want_h, want_w) {
        return Err(wrong_size(h, w));
    }
    Ok(Tensor::from_vec(pixels, &[1, c, h, w])?)
}

/// Reads a PNG or JPEG photo for a 3-channel model of input `[3, h, w]`: used as it is when
/// it has that size, else, with `resize` (the ImageNet model), scaled so its shorter side is
/// `h * 256 / 224` (bicubic) and centre-cropped to `h` x `w` (ImageNet's evaluation
/// transform; for a square input). The file is read within [`MAX_PNG_BYTES`] and its
/// declared size bounded before decoding.
pub fn read_photo(path: &Path, model: &str, [h, w]: [usize; 2], resize: bool) -> CliResult<Input> {
    let bytes = read_capped(path, MAX_PNG_BYTES).map_err(|e| in_file(path, e))?;
    let batch = photo_batch(&bytes, model, [h, w], resize, &path.display().to_string())?;
    Ok(Input {
        shape: batch.shape().to_vec(),
        batch,
    })
}

/// Decodes PNG or JPEG `bytes` into a batch `[1, 3, h, w]` as [`read_photo`] does (the
/// server's uploads use it too, so both give the same input); `source` names the image in
/// messages.
pub fn photo_batch(
    bytes: &[u8],
    model: &str,
    [h, w]: [usize; 2],
    resize: bool,
    source: &str,
) -> CliResult<Tensor> {
    use relprop::zoo::photos::{decode_rgb, resize_crop, CROP, RESIZE};
    let image = decode_rgb(bytes).map_err(|e| CliError::input(format!("{source}: {e}")))?;
    let (ih, iw) = (image.height() as usize, image.width() as usize);
    let pixels = if (ih, iw) == (h, w) {
        // Channel-major values in [0, 1], no resampling.
        let raw = image.as_raw();
        (0..3)
            .flat_map(|c| (0..h * w).map(move |i| f32::from(raw[3 * i + c]) / 255.0))
            .collect()
    } else if resize && h == w {
        resize_crop(&image, h * RESIZE / CROP, h)
    } else {
        return Err(CliError::input(format!(
            "{source}: the image is {iw}x{ih} pixels but {model} takes {w}x{h} images"
        )));
    };
    Ok(Tensor::from_vec(pixels, &[1, 3, h, w])?)
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
