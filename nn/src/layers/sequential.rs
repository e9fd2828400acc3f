//! `Sequential`: a chain of modules, each fed the previous one's output.

use super::line;
use crate::module::{Mode, Module, Param};
use relprop_core::{NodeId, Result, Tape};

/// Modules applied in order, as `torch.nn.Sequential`.
///
/// A `Sequential` labels no node itself (its last child's label would be overwritten):
/// its name only heads `describe`.
///
/// Does its name prefix its children's labels? No: every child carries the full name it
/// was built with (`features.conv1`, not `conv1` under a `features` chain). A layer names
/// its parameters (`features.conv1.weight`) when it is constructed, before any container
/// holds it, and optimizers, checkpoints and rule sets find parameters and nodes by those
/// names; prefixing labels at forward time would make a node's label differ from its
/// parameters' names, and make both depend on how deeply the layer happens to be nested.
/// Full names also match PyTorch's `state_dict` keys directly.
#[derive(Default)]
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty chain called `name` (may be empty for a top-level model).
    pub fn new(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            layers: Vec::new(),
        }
    }

    /// Appends a module, builder style.
    pub fn with(mut self, layer: impl Module + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Appends a module.
    pub fn push(&mut self, layer: impl Module + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Appends an already boxed module.
    pub fn push_boxed(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The modules, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// Mutable access to the modules, in order.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Module>] {
        &mut self.layers
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when the chain is empty (its forward pass is then the identity).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        self.layers
            .iter()
            .try_fold(x, |h, layer| layer.forward(tape, h, mode))
    }

    fn params(&self) -> Vec<&Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        self.layers
            .iter_mut()
            .try_for_each(|l| l.update_running_stats(tape))
    }

    /// A header line, then every child's description indented by two spaces.
    fn describe(&self) -> String {
        let mut out = line(
            Some(&self.name),
            &format!("sequential ({} layers)", self.layers.len()),
        );
        for layer in &self.layers {
            for l in layer.describe().lines() {
                out.push_str("\n  ");
                out.push_str(l);
            }
        }
        out
    }
}
