//! Decoding `.onnx` files into [`OnnxModel`] values.

mod model;

pub use model::{
    AttrValue, Attribute, ConstData, ConstTensor, Dim, Graph, Node, OnnxModel, ValueInfo,
};

use relprop_nn::io::IoError;
use std::path::Path;

/// Reads an `.onnx` file; external data files are looked up beside it.
pub fn read_model(path: &Path) -> Result<OnnxModel, IoError> {
    Err(IoError::malformed(
        format!("onnx model {}", path.display()),
        "the ONNX reader is not built yet",
    ))
}
