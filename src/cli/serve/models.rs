//! The models a server holds: loaded once at start, with the input shape and class count
//! the API reports.

use crate::cli::error::{CliError, CliResult};
use crate::cli::models::{load_any, AnyModel};
use relprop::core::Tensor;
use relprop::nn::train::predict;
use relprop::zoo::Architecture;
use std::io::Write;

/// One served model.
pub struct Served {
    /// The name clients use: the zoo name, or the `.onnx` path as given.
    pub name: String,
    /// The model.
    pub model: AnyModel,
    /// One sample's input shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// Number of classes (the width of the logits).
    pub classes: usize,
    /// Whether the model takes photos of any size (resized and cropped as by
    /// `relprop explain --input photo.jpg`): the ImageNet model.
    pub takes_photos: bool,
}

/// Loads `names` (zoo names or `.onnx` paths); with none, every zoo model whose weights
/// load: the digit models, and the ImageNet model when its weights are already in the
/// cache (never fetched here; a missing one is skipped with one note). A named model that
/// fails is an error.
pub fn load_all(names: &[String]) -> CliResult<Vec<Served>> {
    let mut served: Vec<Served> = Vec::new();
    if names.is_empty() {
        for arch in Architecture::every() {
            match load_one(arch.name()) {
                Ok(m) => served.push(m),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "note: skipping {}: {e}", arch.name());
                }
            }
        }
    } else {
        for name in names {
            if served.iter().any(|m| &m.name == name) {
                continue;
            }
            served.push(load_one(name)?);
        }
    }
    if served.is_empty() {
        return Err(CliError::internal("no model could be loaded"));
    }
    Ok(served)
}

/// Loads one model and finds its class count with one forward pass on zeros.
fn load_one(name: &str) -> CliResult<Served> {
    let model = load_any(name, None)?;
    let Some(&[c, h, w]) = model.input_shape().as_deref() else {
        return Err(CliError::input(format!(
            "{name}: the model does not fix its input shape [C, H, W], which the page needs"
        )));
    };
    let logits = predict(model.module(), &Tensor::zeros(&[1, c, h, w]), 1)?;
    let classes = logits.numel();
    let takes_photos = matches!(&model, AnyModel::Zoo(m) if !m.arch.is_embedded());
    Ok(Served {
        takes_photos,
        name: name.to_string(),
        model,
        shape: [c, h, w],
        classes,
    })
}
