//! Finding a zoo model by name and loading its weights (embedded, checkpoint or safetensors).

use super::error::{in_file, CliError, CliResult};
use relprop::nn::io::{read_safetensors, Checkpoint};
use relprop::nn::state::{expected_shapes, load_state};
use relprop::zoo::{pretrained, Architecture, Model, ALL};
use std::path::Path;

/// The architecture called `name`, or an input error listing the known names.
pub fn architecture(name: &str) -> CliResult<Architecture> {
    Architecture::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|a| a.name()).collect();
        CliError::input(format!(
            "unknown model '{name}' (expected one of: {})",
            names.join(", ")
        ))
    })
}

/// The model with weights from `weights` (a `.safetensors` file with PyTorch names, or a
/// relprop checkpoint), or the embedded pretrained weights without it.
pub fn load(name: &str, weights: Option<&Path>) -> CliResult<Model> {
    let arch = architecture(name)?;
    let Some(path) = weights else {
        return pretrained::load(arch)
            .map_err(|e| CliError::internal(format!("embedded weights of {name}: {e}")));
    };
    let mut model = arch.build(0);
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let state = if is_safetensors {
        let arrays = read_safetensors(path).map_err(|e| in_file(path, e))?;
        // Keep the float tensors; other entries (labels, metadata) cannot be parameters.
        arrays
            .into_iter()
            .filter(|(_, a)| a.dtype() == "f32")
            .map(|(n, a)| Ok((n, a.into_tensor()?)))
            .collect::<Result<Vec<_>, relprop::nn::io::IoError>>()
            .map_err(|e| in_file(path, e))?
    } else {
        let ckpt = Checkpoint::load(path).map_err(|e| in_file(path, e))?;
        ckpt.validate(arch.name(), &expected_shapes(&model))
            .map_err(|e| in_file(path, e))?;
        ckpt.params
    };
    load_state(&mut model, &state, is_safetensors)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    Ok(model)
}
