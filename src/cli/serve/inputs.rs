//! The API's request bodies, and the inputs they carry: a float array in the model's
//! shape, a base64 PNG of the model's input size, or a base64 PNG or JPEG photo (any size
//! for the ImageNet model); and the bundled digits, composites and photos the page offers.

use super::api::ApiError;
use super::models::Served;
use crate::cli::input::{photo_batch, png_batch, MAX_PNG_BYTES};
use base64::Engine;
use relprop::core::Tensor;
use relprop::zoo::digits::{self, Split, CLASSES, SIDE};
use relprop::zoo::pairs::{DigitPairGenerator, CANVAS};
use relprop::zoo::photos::{prepare, PHOTOS};
use serde::Deserialize;

/// The body of `POST /api/explain` and `POST /api/predict` (predict ignores `method`,
/// `rules` and `target`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    /// A served model's name.
    pub model: String,
    /// The attribution method (the CLI's names).
    pub method: Option<String>,
    /// The rule set of an LRP-family method (default: the CLI's).
    pub rules: Option<String>,
    /// The class to explain (default: the predicted one).
    pub target: Option<usize>,
    /// One sample as a float array.
    pub input: Option<InputArray>,
    /// One sample as a base64 PNG of the model's input size.
    pub png: Option<String>,
    /// One sample as a base64 PNG or JPEG: of any size for the ImageNet model (resized and
    /// cropped as `relprop explain --input photo.jpg` does), else of the input size.
    pub image: Option<String>,
}

/// One sample: `[C, H, W]` and its values, row-major.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InputArray {
    /// `[C, H, W]`.
    pub shape: Vec<usize>,
    /// `C * H * W` finite values.
    pub data: Vec<f32>,
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<ModelRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid request: {e}")))
}

/// The request's input as a batch `[1, C, H, W]` for `model`, checked against its shape.
pub fn batch(request: &ModelRequest, model: &Served) -> Result<Tensor, ApiError> {
    let [c, h, w] = model.shape;
    let given = [
        request.input.is_some(),
        request.png.is_some(),
        request.image.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(ApiError::bad(
            "give one of \"input\", \"png\" or \"image\", not several",
        ));
    }
    if let Some(text) = &request.png {
        let bytes = base64_bytes(text, "png")?;
        return Ok(png_batch(&bytes, &model.model, "png")?);
    }
    if let Some(text) = &request.image {
        let bytes = base64_bytes(text, "image")?;
        if c != 3 {
            // Greyscale models take a PNG of their size; the PNG path decodes it as such.
            return Ok(png_batch(&bytes, &model.model, "image")?);
        }
        return Ok(photo_batch(
            &bytes,
            &model.name,
            [h, w],
            model.takes_photos,
            "image",
        )?);
    }
    let Some(array) = &request.input else {
        return Err(ApiError::bad(
            "missing input: give \"input\": {\"shape\": [C, H, W], \"data\": [...]}, \"png\": \"<base64>\" or \"image\": \"<base64>\"",
        ));
    };
    if array.shape != model.shape {
        return Err(ApiError::bad(format!(
            "{} takes inputs of shape [{c}, {h}, {w}], got {:?}",
            model.name, array.shape
        )));
    }
    if array.data.len() != c * h * w {
        return Err(ApiError::bad(format!(
            "shape [{c}, {h}, {w}] needs {} values, got {}",
            c * h * w,
            array.data.len()
        )));
    }
    if array.data.iter().any(|v| !v.is_finite()) {
        return Err(ApiError::bad("the input contains values too large for f32"));
    }
    Ok(Tensor::from_vec(array.data.clone(), &[1, c, h, w])?)
}

/// Decodes a base64 field (`field` names it in messages) within the CLI's image limit.
fn base64_bytes(text: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    // The body limit already bounds the text; the image limit is the CLI's.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| ApiError::bad(format!("{field}: not valid base64: {e}")))?;
    if bytes.len() as u64 > MAX_PNG_BYTES {
        return Err(ApiError::bad(format!(
            "{field}: larger than the image limit"
        )));
    }
    Ok(bytes)
}

/// The bundled photo called `name` as the ImageNet model's input `[3, 224, 224]`.
pub fn photo(name: &str) -> Result<Vec<f32>, ApiError> {
    let Some(p) = PHOTOS.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = PHOTOS.iter().map(|p| p.name).collect();
        return Err(ApiError {
            status: 404,
            message: format!("no photo '{name}' (bundled: {})", names.join(", ")),
        });
    };
    prepare(p.jpeg).map_err(|e| ApiError::internal(format!("photo {name}: {e}")))
}

/// A bundled test digit: the `index`-th (cyclically) of class `class`, as
/// `(label, [1, 28, 28], values)`.
pub fn digit(class: usize, index: usize) -> Result<(usize, Vec<f32>), ApiError> {
    if class >= CLASSES {
        return Err(ApiError::bad(format!(
            "class must be below {CLASSES}, got {class}"
        )));
    }
    let data = digits::load().map_err(|e| ApiError::internal(e.to_string()))?;
    let of_class: Vec<usize> = data
        .test_indices()
        .into_iter()
        .filter(|&i| data.label(i) == class)
        .collect();
    let Some(&i) = of_class.get(index % of_class.len().max(1)) else {
        return Err(ApiError::internal(format!(
            "no test digit of class {class}"
        )));
    };
    Ok((class, data.image_f32(i)))
}

/// A two-digit composite on the 56x56 canvas: test digits of classes `left` and `right`
/// side by side (the `index`-th of each), or with `pair` absent the `seed`-th random
/// composite of the zoo's generator. Returns the two labels and the values.
pub fn composite(
    pair: Option<(usize, usize)>,
    index: usize,
    seed: u64,
) -> Result<([usize; 2], Vec<f32>), ApiError> {
    let Some((left, right)) = pair else {
        let data = digits::load().map_err(|e| ApiError::internal(e.to_string()))?;
        let c = DigitPairGenerator::new(data, Split::Test, seed).next();
        return Ok((c.labels, c.image));
    };
    let (_, a) = digit(left, index)?;
    let (_, b) = digit(right, index)?;
    // Both digits centred vertically, one in each half, as the generator's side-by-side
    // composites are.
    let top = (CANVAS - SIDE) / 2;
    let mut image = vec![0.0f32; CANVAS * CANVAS];
    for r in 0..SIDE {
        let row = (top + r) * CANVAS;
        image[row..row + SIDE].copy_from_slice(&a[r * SIDE..(r + 1) * SIDE]);
        image[row + SIDE..row + 2 * SIDE].copy_from_slice(&b[r * SIDE..(r + 1) * SIDE]);
    }
    Ok(([left, right], image))
}
