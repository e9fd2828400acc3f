//! What can go wrong importing a model: the file, or a graph relprop cannot run.

use relprop_nn::io::IoError;
use std::fmt;

/// An import failure.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportError {
    /// The file could not be read or decoded.
    Read(IoError),
    /// An operator outside the supported list.
    Unsupported {
        /// The ONNX operator, e.g. `LSTM`.
        op: String,
        /// The node's name.
        node: String,
    },
    /// A supported operator used in a way relprop does not support, or an inconsistent graph.
    Invalid {
        /// The node (or part of the graph) concerned.
        node: String,
        /// What is wrong.
        reason: String,
    },
}

impl ImportError {
    /// Shorthand for [`ImportError::Invalid`].
    pub fn invalid(node: impl Into<String>, reason: impl Into<String>) -> Self {
        ImportError::Invalid {
            node: node.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Read(e) => write!(f, "{e}"),
            ImportError::Unsupported { op, node } => write!(
                f,
                "onnx: operator {op} (node `{node}`) is not supported; supported operators: {}",
                super::SUPPORTED_OPS.join(", ")
            ),
            ImportError::Invalid { node, reason } => write!(f, "onnx: node `{node}`: {reason}"),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<IoError> for ImportError {
    fn from(e: IoError) -> Self {
        ImportError::Read(e)
    }
}
