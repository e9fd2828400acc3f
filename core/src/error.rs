//! One error type for the whole core: every failure names the op and the shapes involved.

use std::fmt;

/// Result alias used throughout relprop-core.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, with enough context to fix the call without a debugger.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Shapes that an op cannot combine, e.g. `matmul: [2, 3] x [4, 5]`.
    Shape {
        /// The op that refused the shapes.
        op: &'static str,
        /// Every shape involved, in argument order.
        shapes: Vec<Vec<usize>>,
        /// Why they do not fit.
        reason: String,
    },
    /// A non-shape argument that is out of range (an axis, a stride of 0, a seed length ...).
    Invalid {
        /// The op or function that refused the argument.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The backward walk could not pass a signal through a node.
    Backward {
        /// The node's op name (and label when it has one).
        op: String,
        /// Why no signal could be computed.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, shapes: &[&[usize]], reason: impl Into<String>) -> Self {
        Error::Shape {
            op,
            shapes: shapes.iter().map(|s| s.to_vec()).collect(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape { op, shapes, reason } => {
                let list: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
                write!(
                    f,
                    "{op}: incompatible shapes {}: {reason}",
                    list.join(" and ")
                )
            }
            Error::Invalid { op, reason } => write!(f, "{op}: {reason}"),
            Error::Backward { op, reason } => write!(f, "backward through {op}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
