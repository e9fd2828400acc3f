//! `Flatten`: merges every dimension from 1 on, `[n, c, h, w] -> [n, c*h*w]`.

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{NodeId, Result, Tape};

/// `torch.nn.Flatten()`: one `reshape` node keeping the batch dimension.
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    name: Option<String>,
}

impl Flatten {
    /// An unnamed flatten (its node carries no label).
    pub fn new() -> Self {
        Flatten { name: None }
    }

    /// A flatten whose output node is labelled `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Flatten {
            name: Some(name.into()),
        }
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Module for Flatten {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.flatten(x, 1)?;
        match &self.name {
            Some(n) => labelled(tape, y, n),
            None => Ok(y),
        }
    }

    fn describe(&self) -> String {
        line(self.name.as_deref(), "flatten")
    }
}
