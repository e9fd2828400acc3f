//! `Relu`: `max(x, 0)`, one `relu` node.

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{NodeId, Result, Tape};

/// Rectified linear unit. Named, it labels its node; unnamed, it records a bare `relu`.
#[derive(Clone, Debug, Default)]
pub struct Relu {
    name: Option<String>,
}

impl Relu {
    /// An unnamed ReLU (its node carries no label).
    pub fn new() -> Self {
        Relu { name: None }
    }

    /// A ReLU whose output node is labelled `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Relu {
            name: Some(name.into()),
        }
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Module for Relu {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.relu(x)?;
        match &self.name {
            Some(n) => labelled(tape, y, n),
            None => Ok(y),
        }
    }

    fn describe(&self) -> String {
        line(self.name.as_deref(), "relu")
    }
}
