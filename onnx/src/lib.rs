//! relprop-onnx: read an `.onnx` file and run it as a relprop model, or write a relprop
//! model as one.
//!
//! [`reader`] decodes the protobuf (no `protoc`, no C++) into plain Rust values with every
//! declared size checked before allocation; [`graph`] imports the decoded model as an
//! [`OnnxNet`]; [`writer`] encodes a model's recorded pass, op by op, with the same
//! protobuf messages.

#![warn(missing_docs)]

pub mod graph;
pub mod reader;
pub mod writer;

pub use graph::{ImportError, OnnxNet, SUPPORTED_OPS};
pub use reader::{
    decode_model, read_model, AttrValue, Attribute, ConstData, ConstTensor, Dim, Graph, Node,
    OnnxModel, ValueInfo, DECODED_BYTES_PER_BYTE, MAX_MODEL_BYTES,
};
pub use writer::{export_module, export_tape, write_model, ExportError};
