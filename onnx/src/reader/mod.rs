//! Decoding `.onnx` files into [`OnnxModel`] values.
//!
//! The file is untrusted. It is read with a cap (protobuf messages cannot exceed 2 GiB),
//! only from a regular file, and decoded by prost, which checks every length prefix
//! against the bytes that follow before allocating and limits nesting (subgraphs make
//! the messages recursive). Tensor shapes are then checked against the data present, in
//! the file or in its external data files, before any tensor is built. Every failure is
//! an [`IoError`] naming `onnx` and the part of the file concerned.
//!
//! Memory: each sub-message becomes a struct of up to a few hundred bytes, however few
//! bytes encode it, so before decoding, a walk over the wire format adds up the structs
//! it will create and refuses a file whose messages would take more than
//! [`DECODED_BYTES_PER_BYTE`] times its length (plus 1 MiB).

mod budget;
mod convert;
mod external;
mod model;
pub(crate) mod proto;
mod tensor;

pub use model::{
    AttrValue, Attribute, ConstData, ConstTensor, Dim, Graph, Node, OnnxModel, ValueInfo,
};

#[cfg(test)]
mod tests;

use prost::Message;
use relprop_nn::io::IoError;
use std::io::Read;
use std::path::Path;

/// The largest model file accepted: protobuf messages are limited to 2 GiB.
pub const MAX_MODEL_BYTES: u64 = 1 << 31;

/// The most memory the decoded messages of a file may take, per byte of the file (plus
/// 1 MiB); only files made of runs of empty sub-messages come near it.
pub const DECODED_BYTES_PER_BYTE: usize = budget::BYTES_PER_BYTE;

/// Reads an `.onnx` file; external data files are looked up beside it.
///
/// Refuses anything but a regular file, and files over [`MAX_MODEL_BYTES`].
pub fn read_model(path: &Path) -> Result<OnnxModel, IoError> {
    let file = external::open_regular(path, "onnx model")?;
    let os = |e: std::io::Error| IoError::os(path, "reading onnx model", &e);
    let len = file.metadata().map_err(os)?.len();
    if len > MAX_MODEL_BYTES {
        return Err(too_large(path, len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The cap holds even if the file grows while it is read.
    file.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(os)?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    decode_model(&bytes, Some(dir))
}

/// Decodes the bytes of an `.onnx` file. External data files are looked up in
/// `base_dir`; without one, a model with external data is refused.
pub fn decode_model(bytes: &[u8], base_dir: Option<&Path>) -> Result<OnnxModel, IoError> {
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(too_large(Path::new("(bytes)"), bytes.len() as u64));
    }
    budget::check(bytes)?;
    let proto = proto::ModelProto::decode(bytes)
        .map_err(|e| IoError::malformed("onnx model", format!("not a valid protobuf: {e}")))?;
    convert::model(proto, &mut external::External::new(base_dir))
}

fn too_large(path: &Path, len: u64) -> IoError {
    IoError::TooLarge {
        what: format!("onnx model {}", path.display()),
        declared: len as u128,
        limit: MAX_MODEL_BYTES as u128,
    }
}
