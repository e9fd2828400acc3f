//! Rewriting a recorded pass after the fact: other leaf values ("what if this layer's
//! weights were different?") and other ops (canonizers folding one layer into another).
//!
//! A rewrite never adds or removes nodes, so every id a caller holds (the input, the
//! logits, a layer found by label) still names the same value; and it keeps creation
//! order topological (a replaced op may only read nodes recorded before it), which the
//! backward walk relies on. Nodes that depend on a change are evaluated again.

use super::{forward, Node, NodeId, Saved, Tape};
use crate::error::{Error, Result};
use crate::tape::op::Op;
use crate::tensor::Tensor;

/// One change of [`Tape::edit`].
#[derive(Clone, Debug)]
pub enum Edit {
    /// A leaf takes another value of the same shape.
    Value(NodeId, Tensor),
    /// A node computes another op, which may only read nodes recorded before it.
    Op(NodeId, Op),
    /// A node becomes a constant leaf (one that never receives a signal) holding this
    /// value, of any shape: how a canonizer turns a node it no longer needs into a new
    /// parameter without adding a node (the nodes reading it must accept the new value,
    /// or be given new ops, else the evaluation fails).
    Constant(NodeId, Tensor),
    /// A node's label (`None` removes it).
    Label(NodeId, Option<String>),
}

impl Tape {
    /// A copy of this tape in which some leaves hold other values, and every node that
    /// depends on them is evaluated again ("what if this layer's weights were different?").
    /// Nodes that do not depend on a replaced leaf share their values with this tape.
    pub fn rerun_with(&self, leaves: &[(NodeId, Tensor)]) -> Result<Tape> {
        self.rewrite(leaves, &[])
    }

    /// Like [`Tape::rerun_with`], and also replaces the ops of some nodes (same ids, inputs
    /// recorded earlier): how canonizers fold one layer into another after recording.
    pub fn rewrite(&self, leaves: &[(NodeId, Tensor)], ops: &[(NodeId, Op)]) -> Result<Tape> {
        let edits: Vec<Edit> = leaves
            .iter()
            .map(|(id, v)| Edit::Value(*id, v.clone()))
            .chain(ops.iter().map(|(id, op)| Edit::Op(*id, op.clone())))
            .collect();
        self.edit(&edits)
    }

    /// A copy of this tape with `edits` applied in order (see [`Edit`]), then every node
    /// that depends on a change evaluated again. The nodes and their ids stay the same.
    pub fn edit(&self, edits: &[Edit]) -> Result<Tape> {
        let mut out = self.clone();
        let mut changed = vec![false; self.nodes.len()];
        for edit in edits {
            match edit {
                Edit::Value(id, value) => {
                    let node = self.node(*id)?;
                    if !matches!(node.op, Op::Leaf { .. }) || node.value.shape() != value.shape() {
                        return Err(Error::shape(
                            "rewrite",
                            &[node.value.shape(), value.shape()],
                            format!("node {id} must be a leaf and keep its shape"),
                        ));
                    }
                    out.nodes[*id].value = value.clone();
                    changed[*id] = true;
                }
                Edit::Op(id, op) => {
                    self.node(*id)?;
                    if matches!(op, Op::Leaf { .. }) || op.inputs().iter().any(|&i| i >= *id) {
                        return Err(Error::invalid(
                            "rewrite",
                            format!("node {id} may only read nodes recorded before it"),
                        ));
                    }
                    out.nodes[*id].op = op.clone();
                    changed[*id] = true;
                }
                Edit::Constant(id, value) => {
                    self.node(*id)?;
                    let label = out.nodes[*id].label.take();
                    out.nodes[*id] = Node {
                        op: Op::Leaf {
                            requires_grad: false,
                        },
                        value: value.clone(),
                        label,
                        saved: Saved::Nothing,
                        tracks: false,
                    };
                    changed[*id] = true;
                }
                Edit::Label(id, label) => {
                    self.node(*id)?;
                    out.nodes[*id].label = label.clone();
                }
            }
        }
        for id in 0..out.nodes.len() {
            let dirty = changed[id] && !matches!(out.nodes[id].op, Op::Leaf { .. });
            if dirty || out.nodes[id].op.inputs().iter().any(|&i| changed[i]) {
                let (value, saved) = forward::eval(&out, &out.nodes[id].op)?;
                let inputs = out.nodes[id].op.inputs();
                out.nodes[id].tracks = inputs.iter().any(|&i| out.nodes[i].tracks);
                out.nodes[id].value = value;
                out.nodes[id].saved = saved;
                changed[id] = true;
            }
        }
        Ok(out)
    }
}
