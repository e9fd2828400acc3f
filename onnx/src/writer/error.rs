//! What can go wrong exporting a model: running it, expressing it in ONNX, writing it.

use relprop_nn::io::IoError;
use std::fmt;

/// An export failure.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportError {
    /// The requested input shape is unusable, or the model failed on a dummy input of it.
    Record(String),
    /// A recorded operation with no ONNX counterpart that relprop reads back.
    Unsupported {
        /// The operation, e.g. `exp`.
        op: String,
        /// The node, e.g. `exp (head.act)`.
        node: String,
    },
    /// An operation used in a way ONNX (or a dynamic batch) cannot express.
    Invalid {
        /// The node concerned.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be written.
    Write(IoError),
}

impl ExportError {
    /// Shorthand for [`ExportError::Invalid`].
    pub fn invalid(node: impl Into<String>, reason: impl Into<String>) -> Self {
        ExportError::Invalid {
            node: node.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Record(why) => write!(f, "onnx export: {why}"),
            ExportError::Unsupported { op, node } => write!(
                f,
                "onnx export: operation {op} (node `{node}`) cannot be written to ONNX"
            ),
            ExportError::Invalid { node, reason } => {
                write!(f, "onnx export: node `{node}`: {reason}")
            }
            ExportError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<IoError> for ExportError {
    fn from(e: IoError) -> Self {
        ExportError::Write(e)
    }
}
