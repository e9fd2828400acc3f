//! relprop-onnx: read an `.onnx` file and run it as a relprop model.
//!
//! [`reader`] decodes the protobuf (no `protoc`, no C++) into plain Rust values with every
//! declared size checked before allocation.

#![warn(missing_docs)]

pub mod graph;
pub mod reader;

pub use graph::{ImportError, OnnxNet, SUPPORTED_OPS};
pub use reader::{
    decode_model, read_model, AttrValue, Attribute, ConstData, ConstTensor, Dim, Graph, Node,
    OnnxModel, ValueInfo, DECODED_BYTES_PER_BYTE, MAX_MODEL_BYTES,
};
