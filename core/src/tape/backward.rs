//! The backward walk, and the two traits that make it pluggable: **start reading here**.
//!
//! Read this file top to bottom: it is the whole idea of relprop.
//!
//! A forward pass records nodes on a [`Tape`]. [`Tape::backward`] places a *seed* signal on
//! one node (the logits, say) and walks the tape in reverse creation order. At each node it
//! asks a [`RuleSet`] which [`Rule`] should pass the signal from the node's output to its
//! inputs. With no rule chosen it uses the exact derivative, so [`Exact`] gives gradients.
//! An LRP rule set answers differently for, say, every `conv2d` node, and the very same
//! recorded pass then yields relevance. Rules are chosen at walk time, never when recording.
//!
//! # The mathematics
//!
//! Reverse-mode differentiation: for a node `y = f(x_1, ..., x_k)` and the signal
//! `g = d L / d y` that reached it (the seed at the root), the chain rule gives each input
//!
//! ```text
//! d L / d x_i = J_i^T g,     J_i = d f / d x_i    (the vector-Jacobian product, VJP)
//! ```
//!
//! and an input used by several nodes receives the sum of their signals. Node ids are given
//! in creation order, so every consumer of a node has a larger id than the node: walking
//! the ids downwards finishes a node's signal before it is passed on (no sort, no
//! recursion). The VJP of every op is in `derivative.rs` (a linear layer `y = x W^T + b`
//! passes `g W` to `x`; a ReLU passes `g` where `x > 0`).
//!
//! LRP (see `relprop_explain::rules::affine`) keeps this walk and changes only the local
//! step: instead of `J^T g` a layer passes on `x * J^T(R / z)` (relevance in proportion to
//! each input's contribution `x_i w_ij` to `z_j`), activations pass `R` unchanged, sums
//! split it in proportion to their terms. So a [`Rule`] is "the local backward step of one
//! node", a [`RuleSet`] picks one per node, and [`Derivative`] (the VJP) is the rule every
//! node falls back to.

use super::{derivative, NodeId, Tape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How to pass a signal from a node's output back to its inputs.
pub trait Rule: Send + Sync {
    /// Given the `signal` at the output of node `id`, return one signal per input of the
    /// node (in [`super::op::Op::inputs`] order); `None` where nothing flows.
    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>>;

    /// A short name for listings such as `relprop info` (rules without one say `custom`).
    fn name(&self) -> String {
        "custom".into()
    }

    /// Per sample, how much of `signal` this rule keeps from the node's inputs by design
    /// (an LRP rule: what biases and stabilisers absorb), so a check of conservation can
    /// tell it from a leak. `None` when the rule does not account for it.
    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        let _ = (tape, id, signal);
        Ok(None)
    }
}

/// Chooses a rule per node. `None` means "use the exact derivative".
pub trait RuleSet {
    /// The rule for node `id`, or `None` for the derivative.
    fn rule_for(&self, tape: &Tape, id: NodeId) -> Option<&dyn Rule>;
}

/// The exact derivative as a [`Rule`]: the vector-Jacobian product of the node's op.
#[derive(Clone, Copy, Debug, Default)]
pub struct Derivative;

impl Rule for Derivative {
    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        derivative::vjp(tape, id, signal)
    }
}

/// The rule set that chooses nothing: every node uses its derivative (plain gradients).
#[derive(Clone, Copy, Debug, Default)]
pub struct Exact;

impl RuleSet for Exact {
    fn rule_for(&self, _tape: &Tape, _id: NodeId) -> Option<&dyn Rule> {
        None
    }
}

/// The signal that reached every node during one backward walk.
#[derive(Clone, Debug)]
pub struct Signals {
    signals: Vec<Option<Tensor>>,
}

impl Signals {
    /// The signal at node `id` (`None` if nothing reached it).
    pub fn get(&self, id: NodeId) -> Option<&Tensor> {
        self.signals.get(id).and_then(Option::as_ref)
    }

    /// The signal at `id`, or zeros of the node's shape when nothing reached it.
    pub fn get_or_zeros(&self, tape: &Tape, id: NodeId) -> Result<Tensor> {
        match self.get(id) {
            Some(s) => Ok(s.clone()),
            None => Ok(Tensor::zeros(tape.value(id)?.shape())),
        }
    }

    /// Every node's signal, indexed by node id.
    pub fn all(&self) -> &[Option<Tensor>] {
        &self.signals
    }
}

impl Tape {
    /// Walks back from `root` with `seed` (same shape as the root's value), letting `rules`
    /// choose how each node passes its signal on. Returns the signal at every node.
    pub fn backward(&self, root: NodeId, seed: &Tensor, rules: &dyn RuleSet) -> Result<Signals> {
        let root_value = self.value(root)?;
        if seed.shape() != root_value.shape() {
            return Err(Error::shape(
                "backward",
                &[seed.shape(), root_value.shape()],
                "the seed must have the root node's shape",
            ));
        }
        let mut signals: Vec<Option<Tensor>> = vec![None; root + 1];
        signals[root] = Some(seed.clone());

        // Creation order is topological, so a reverse loop sees every node after all of
        // its consumers: its signal is complete when we reach it.
        for id in (0..=root).rev() {
            let node = &self.nodes[id];
            let Some(signal) = signals[id].clone() else {
                continue;
            };
            let inputs = node.op.inputs();
            if inputs.is_empty() || !node.tracks() {
                continue; // a leaf, or nothing below wants a signal
            }

            let rule = rules.rule_for(self, id).unwrap_or(&Derivative);
            let passed = rule.backward(self, id, &signal)?;
            if passed.len() != inputs.len() {
                return Err(Error::Backward {
                    op: node.describe(),
                    reason: format!(
                        "the rule returned {} signals for {} inputs",
                        passed.len(),
                        inputs.len()
                    ),
                });
            }

            for (input, s) in inputs.into_iter().zip(passed) {
                let Some(s) = s.filter(|_| self.nodes[input].tracks()) else {
                    continue;
                };
                let want = self.nodes[input].value.shape();
                if s.shape() != want {
                    return Err(Error::Backward {
                        op: node.describe(),
                        reason: format!("the rule returned a signal of shape {:?} for an input of shape {want:?}", s.shape()),
                    });
                }
                // A value used twice (a residual branch) collects both signals.
                signals[input] = Some(match signals[input].take() {
                    Some(acc) => acc.add(&s)?,
                    None => s,
                });
            }
        }
        Ok(Signals { signals })
    }

    /// Gradient of `root` (seeded with ones) at every node: the common training call.
    pub fn grad(&self, root: NodeId) -> Result<Signals> {
        let ones = Tensor::ones(self.value(root)?.shape());
        self.backward(root, &ones, &Exact)
    }
}
