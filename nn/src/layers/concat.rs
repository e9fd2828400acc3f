//! `Concat`: several branches applied to the same input, joined along channels (an
//! Inception block, a DenseNet layer with an identity branch).

use super::{labelled, line};
use crate::module::{Mode, Module, Param};
use relprop_core::{Error, NodeId, Result, Tape};

/// Branches applied to the same input whose outputs are joined along axis 1 (channels) by
/// one `concat` node labelled with the block's name. Explanations split relevance at that
/// node by position, so each branch receives exactly the relevance of its own channels.
pub struct Concat {
    name: String,
    branches: Vec<Box<dyn Module>>,
}

impl Concat {
    /// A block called `name` with no branches yet (its forward pass errors until one is
    /// added).
    pub fn new(name: impl Into<String>) -> Self {
        Concat {
            name: name.into(),
            branches: Vec::new(),
        }
    }

    /// Appends a branch (usually a `Sequential`), builder style.
    pub fn with(mut self, branch: impl Module + 'static) -> Self {
        self.push(branch);
        self
    }

    /// Appends a branch.
    pub fn push(&mut self, branch: impl Module + 'static) {
        self.branches.push(Box::new(branch));
    }

    /// Appends an already boxed branch.
    pub fn push_boxed(&mut self, branch: Box<dyn Module>) {
        self.branches.push(branch);
    }

    /// The block's full name, which labels its `concat` node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The branches, in the order their channels appear in the output.
    pub fn branches(&self) -> &[Box<dyn Module>] {
        &self.branches
    }

    /// Mutable access to the branches.
    pub fn branches_mut(&mut self) -> &mut [Box<dyn Module>] {
        &mut self.branches
    }
}

impl Module for Concat {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        if self.branches.is_empty() {
            return Err(Error::invalid(
                "Concat",
                format!("`{}` has no branches to join", self.name),
            ));
        }
        let outs = self
            .branches
            .iter()
            .map(|b| b.forward(tape, x, mode))
            .collect::<Result<Vec<_>>>()?;
        // Checked here so the error names the block and every branch's shape, not just the
        // two the kernel happened to compare.
        let shapes = outs
            .iter()
            .map(|&o| Ok(tape.value(o)?.shape().to_vec()))
            .collect::<Result<Vec<_>>>()?;
        let agree = |s: &Vec<usize>| {
            s.len() >= 2
                && s.len() == shapes[0].len()
                && s.iter()
                    .zip(&shapes[0])
                    .enumerate()
                    .all(|(axis, (a, b))| axis == 1 || a == b)
        };
        if !shapes.iter().all(agree) {
            let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
            return Err(Error::shape(
                "Concat",
                &refs,
                format!(
                    "the branches of `{}` must agree on every axis but channels (1)",
                    self.name
                ),
            ));
        }
        let y = tape.concat(&outs, 1)?;
        labelled(tape, y, &self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.branches.iter().flat_map(|b| b.params()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.branches
            .iter_mut()
            .flat_map(|b| b.params_mut())
            .collect()
    }

    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        self.branches
            .iter_mut()
            .try_for_each(|b| b.update_running_stats(tape))
    }

    /// A header line, then each branch's description under `branch <k>:`.
    fn describe(&self) -> String {
        let mut out = line(
            Some(&self.name),
            &format!("concat ({} branches)", self.branches.len()),
        );
        for (k, branch) in self.branches.iter().enumerate() {
            out.push_str(&format!("\n  branch {k}:"));
            for l in branch.describe().lines() {
                out.push_str("\n    ");
                out.push_str(l);
            }
        }
        out
    }
}
