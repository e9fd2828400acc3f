//! The `Module` trait: a layer or model records its forward pass onto a tape.
//!
//! Every parameter carries its full PyTorch `state_dict` name (`features.conv1.weight`), and
//! is recorded on the tape under that label, so optimizers, checkpoints, safetensors and
//! LRP rule sets all find parameters by the same name.

use relprop_core::{NodeId, Result, Tape, Tensor};

/// Training or evaluation behaviour (Dropout, BatchNorm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Dropout active, BatchNorm normalises with batch statistics.
    Train,
    /// Dropout off, BatchNorm uses its running statistics.
    Eval,
}

/// A named tensor owned by a module.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Full `state_dict` name, e.g. `classifier.fc1.bias`.
    pub name: String,
    /// Current value.
    pub value: Tensor,
    /// False for buffers such as BatchNorm running statistics: saved, never optimised.
    pub trainable: bool,
}

impl Param {
    /// A trainable parameter.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Param {
            name: name.into(),
            value,
            trainable: true,
        }
    }

    /// A buffer: part of the state, not optimised.
    pub fn buffer(name: impl Into<String>, value: Tensor) -> Self {
        Param {
            name: name.into(),
            value,
            trainable: false,
        }
    }

    /// Records this parameter on the tape, labelled with its name.
    pub fn record(&self, tape: &mut Tape) -> NodeId {
        if self.trainable {
            tape.param(self.value.clone(), self.name.clone())
        } else {
            let id = tape.constant(self.value.clone());
            // Labelling a fresh id cannot fail.
            let _ = tape.set_label(id, self.name.clone());
            id
        }
    }
}

/// A layer or a model.
pub trait Module: Send + Sync {
    /// Records the forward pass from node `x` and returns the output node. Layer outputs
    /// are labelled with the layer's name so rule sets and audits can find them.
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId>;

    /// Every parameter and buffer, in a fixed order.
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }

    /// Mutable access to every parameter and buffer, in the same order as `params`.
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }

    /// After a training-mode forward pass, folds what the pass observed into running state
    /// (BatchNorm's running mean and variance). Read from the tape, so `forward` stays `&self`.
    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        let _ = tape;
        Ok(())
    }

    /// One line describing the layer, e.g. `features.conv1: conv2d 1->6 k5 p2`.
    fn describe(&self) -> String;
}
