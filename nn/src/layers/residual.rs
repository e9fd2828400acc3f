//! `Residual`: `body(x) + shortcut(x)`, the skip connection of a ResNet block.

use super::{labelled, line, Sequential};
use crate::module::{Mode, Module, Param};
use relprop_core::{NodeId, Result, Tape};

/// A residual block whose output is one plain `add` node labelled with the block's name:
/// `body(x) + shortcut(x)`, or `body(x) + x` without a shortcut. Rule sets that split
/// relevance between the two branches find the block by that label.
pub struct Residual {
    name: String,
    /// The main branch.
    pub body: Sequential,
    /// The projection on the skip branch (`downsample` in torchvision), if any.
    pub shortcut: Option<Box<dyn Module>>,
}

impl Residual {
    /// A block `body(x) + shortcut(x)` (identity shortcut when `None`).
    pub fn new(
        name: impl Into<String>,
        body: Sequential,
        shortcut: Option<Box<dyn Module>>,
    ) -> Self {
        Residual {
            name: name.into(),
            body,
            shortcut,
        }
    }

    /// The block's full name, which labels its `add` node.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Module for Residual {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        let main = self.body.forward(tape, x, mode)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward(tape, x, mode)?,
            None => x,
        };
        let y = tape.add(main, skip)?;
        labelled(tape, y, &self.name)
    }

    fn params(&self) -> Vec<&Param> {
        let mut out = self.body.params();
        if let Some(s) = &self.shortcut {
            out.extend(s.params());
        }
        out
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut out = self.body.params_mut();
        if let Some(s) = &mut self.shortcut {
            out.extend(s.params_mut());
        }
        out
    }

    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        self.body.update_running_stats(tape)?;
        if let Some(s) = &mut self.shortcut {
            s.update_running_stats(tape)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut out = line(Some(&self.name), "residual");
        out.push_str("\n  body:");
        for l in self.body.describe().lines() {
            out.push_str("\n    ");
            out.push_str(l);
        }
        match &self.shortcut {
            Some(s) => {
                out.push_str("\n  shortcut:");
                for l in s.describe().lines() {
                    out.push_str("\n    ");
                    out.push_str(l);
                }
            }
            None => out.push_str("\n  shortcut: identity"),
        }
        out
    }
}
