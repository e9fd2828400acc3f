//! Finding a model: a zoo model by name (embedded weights, a checkpoint or safetensors),
//! or an `.onnx` file by path.

use super::error::{in_file, CliError, CliResult};
use relprop::nn::io::{read_pth, read_safetensors, Checkpoint, IoError};
use relprop::nn::Module;
use relprop::onnx::OnnxNet;
use relprop::zoo::{imagenet, pretrained, Architecture, Model};
use std::path::Path;

/// The architecture called `name`, or an input error listing the known names.
pub fn architecture(name: &str) -> CliResult<Architecture> {
    Architecture::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Architecture::every().map(|a| a.name()).collect();
        CliError::input(format!(
            "unknown model '{name}' (expected one of: {})",
            names.join(", ")
        ))
    })
}

/// The model with weights from `weights` (a `.safetensors` or PyTorch `.pth`/`.pt` file
/// with PyTorch names, or a relprop checkpoint), or without it the embedded pretrained
/// weights (digit models) or the fetched published ones (ImageNet models).
pub fn load(name: &str, weights: Option<&Path>) -> CliResult<Model> {
    let arch = architecture(name)?;
    let Some(path) = weights else {
        if !arch.is_embedded() {
            // Published weights: from the cache, checked by SHA-256, or how to fetch them.
            return imagenet::efficientnet_lite0().map_err(|e| CliError::input(e.to_string()));
        }
        return pretrained::load(arch)
            .map_err(|e| CliError::internal(format!("embedded weights of {name}: {e}")));
    };
    let format = weight_format(path);
    let is_named = format != "checkpoint";
    let state = if is_named {
        let arrays = if format == "pth" {
            read_pth(path)
        } else {
            read_safetensors(path)
        }
        .map_err(|e| in_file(path, e))?;
        // A parameter in another dtype is named as such rather than reported missing;
        // weights are never converted silently (an F64 file may hold a different model).
        // (The names are built only when there is such an entry: listing them builds
        // the model, twice for efficientnet_lite0.)
        let other_dtype = arrays.iter().any(|(_, a)| a.dtype() != "f32");
        let names = if other_dtype {
            arch.state_names()
        } else {
            Vec::new()
        };
        if let Some((name, a)) = arrays
            .iter()
            .find(|(n, a)| a.dtype() != "f32" && names.contains(n))
        {
            return Err(in_file(
                path,
                format!(
                    "{name} is stored as {}; relprop reads F32",
                    a.dtype().to_uppercase()
                ),
            ));
        }
        // Keep the float tensors; other entries (labels, metadata) cannot be parameters.
        arrays
            .into_iter()
            .filter(|(_, a)| a.dtype() == "f32")
            .map(|(n, a)| Ok((n, a.into_tensor()?)))
            .collect::<Result<Vec<_>, IoError>>()
            .map_err(|e| in_file(path, e))?
    } else {
        let ckpt = Checkpoint::load(path).map_err(|e| in_file(path, e))?;
        if ckpt.architecture != arch.name() {
            let e = IoError::WrongArchitecture {
                expected: arch.name().to_string(),
                found: ckpt.architecture,
            };
            return Err(in_file(path, e));
        }
        ckpt.params
    };
    // Checked by name and shape as it loads; efficientnet_lite0 takes either of its
    // layouts and comes back with its BatchNorms folded.
    arch.with_state(&state, is_named).map_err(|e| {
        // The loader's messages say "checkpoint"; name the format the user gave.
        let message = e.to_string();
        let message = match message.strip_prefix("checkpoint: ") {
            Some(rest) if is_named => format!("{format}: {rest}"),
            _ => message,
        };
        CliError::input(format!("{}: {message}", path.display()))
    })
}

/// The format of a weights file, by its extension: `safetensors`, `pth` (PyTorch's
/// `torch.save`, also `.pt`) or a relprop `checkpoint`.
pub fn weight_format(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("safetensors") => "safetensors",
        Some("pth" | "pt") => "pth",
        _ => "checkpoint",
    }
}

/// A model named on the command line: from the zoo, or imported from an `.onnx` file.
pub enum AnyModel {
    /// A zoo architecture with its weights.
    Zoo(Model),
    /// An imported ONNX graph.
    Onnx(OnnxNet),
}

impl AnyModel {
    /// The model to record and explain.
    pub fn module(&self) -> &dyn Module {
        match self {
            AnyModel::Zoo(m) => m,
            AnyModel::Onnx(m) => m,
        }
    }

    /// The model to train (benchmarks time a training step on any model).
    pub fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            AnyModel::Zoo(m) => m,
            AnyModel::Onnx(m) => m,
        }
    }

    /// One sample's input shape `[C, H, W]`, when it is fixed.
    pub fn input_shape(&self) -> Option<Vec<usize>> {
        match self {
            AnyModel::Zoo(m) => Some(m.arch.input_shape().to_vec()),
            AnyModel::Onnx(m) => m.input_shape(),
        }
    }

    /// The name for messages.
    pub fn name(&self) -> &str {
        match self {
            AnyModel::Zoo(m) => m.arch.name(),
            AnyModel::Onnx(m) => m.name(),
        }
    }
}

/// Whether `--model` names a file to import rather than a zoo architecture.
pub fn is_onnx(model: &str) -> bool {
    Path::new(model)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The zoo model `name` (with `weights`), or the ONNX model at path `name`.
pub fn load_any(name: &str, weights: Option<&Path>) -> CliResult<AnyModel> {
    if !is_onnx(name) {
        return load(name, weights).map(AnyModel::Zoo);
    }
    if weights.is_some() {
        return Err(CliError::input(
            "--weights is for zoo models: an .onnx file carries its own weights",
        ));
    }
    OnnxNet::load(Path::new(name))
        .map(AnyModel::Onnx)
        .map_err(|e| CliError::input(format!("{name}: {e}")))
}
