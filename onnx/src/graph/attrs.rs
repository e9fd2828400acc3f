//! Reading a node's attributes with their ONNX defaults, and errors that name the node.

use super::error::ImportError;
use crate::reader::{AttrValue, Node};

/// Typed access to one node's attributes.
pub(crate) struct Attrs<'a> {
    node: &'a Node,
    label: &'a str,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a Node, label: &'a str) -> Self {
        Attrs { node, label }
    }

    fn wrong(&self, name: &str, want: &str) -> ImportError {
        ImportError::invalid(self.label, format!("attribute `{name}` must be {want}"))
    }

    /// An `INT` attribute, or `default` when absent.
    pub(crate) fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        match self.node.attr(name) {
            None => Ok(default),
            Some(AttrValue::Int(v)) => Ok(*v),
            Some(_) => Err(self.wrong(name, "an integer")),
        }
    }

    /// A `FLOAT` attribute, or `default` when absent.
    pub(crate) fn float(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        match self.node.attr(name) {
            None => Ok(default),
            Some(AttrValue::Float(v)) => Ok(*v),
            Some(_) => Err(self.wrong(name, "a float")),
        }
    }

    /// An `INTS` attribute, if present.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        match self.node.attr(name) {
            None => Ok(None),
            Some(AttrValue::Ints(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.wrong(name, "a list of integers")),
        }
    }

    /// A `STRING` attribute, or `default` when absent.
    pub(crate) fn string(&self, name: &str, default: &str) -> Result<String, ImportError> {
        match self.node.attr(name) {
            None => Ok(default.to_string()),
            Some(AttrValue::String(v)) => Ok(v.clone()),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    /// A list of `n` non-negative sizes (`kernel_shape`, `strides`...), or `default`.
    pub(crate) fn sizes(
        &self,
        name: &str,
        n: usize,
        default: usize,
    ) -> Result<Vec<usize>, ImportError> {
        match self.ints(name)? {
            None => Ok(vec![default; n]),
            Some(v) if v.len() == n => v
                .iter()
                .map(|&x| usize::try_from(x).map_err(|_| self.wrong(name, "non-negative")))
                .collect(),
            Some(v) => Err(ImportError::invalid(
                self.label,
                format!("attribute `{name}` has {} values, expected {n}", v.len()),
            )),
        }
    }
}
