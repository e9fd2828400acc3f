//! `Normalize`: per-channel `(x - mean) / std` with constant statistics, the input
//! normalisation of torchvision models moved into the graph.

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{Error, NodeId, Result, Tape, Tensor};

/// Per-channel `(x - mean) / std` over `[N, C, ...]`, recorded as a `sub` and a `div` by
/// constants; the `div` node is labelled with the layer's name.
///
/// Recording it as two plain elementwise ops by constants (rather than one op of its own)
/// is what lets explanations handle it without a rule of its own: relevance passes through
/// an op whose other operand is a constant unchanged, ZBox bounds given for the raw input
/// are carried through the same shift and scale, and gradients follow by the chain rule.
/// The statistics are fixed, not parameters: they appear in no `params()` or checkpoint.
#[derive(Clone, Debug)]
pub struct Normalize {
    name: String,
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// A normalisation with one `mean` and `std` per channel. Errors unless both have the
    /// same, non-zero length, every mean is finite and every std finite and positive.
    pub fn new(name: impl Into<String>, mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::shape(
                "Normalize",
                &[&[mean.len()], &[std.len()]],
                "mean and std need one value per channel, as many of each",
            ));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::invalid(
                "Normalize",
                format!("the mean {m} is not finite"),
            ));
        }
        // A zero or negative std would divide by zero or flip the sign of a channel.
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::invalid(
                "Normalize",
                format!("the std {s} is not finite and positive"),
            ));
        }
        Ok(Normalize {
            name: name.into(),
            mean,
            std,
        })
    }

    /// The layer's full name, which labels its `div` node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The per-channel means.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The per-channel standard deviations.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }
}

impl Module for Normalize {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let shape = tape.value(x)?.shape().to_vec();
        let c = self.channels();
        if shape.len() < 2 || shape[1] != c {
            return Err(Error::shape(
                "Normalize",
                &[&shape, &[c]],
                format!("the input must be [N, {c}, ...]"),
            ));
        }
        // [1, C, 1, ...]: broadcasts over the batch and every axis after the channels.
        let mut stat_shape = vec![1; shape.len()];
        stat_shape[1] = c;
        let mean = tape.constant(Tensor::from_vec(self.mean.clone(), &stat_shape)?);
        let std = tape.constant(Tensor::from_vec(self.std.clone(), &stat_shape)?);
        let centred = tape.sub(x, mean)?;
        let y = tape.div(centred, std)?;
        labelled(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        let list = |v: &[f32]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        line(
            Some(&self.name),
            &format!(
                "normalize mean=[{}] std=[{}]",
                list(&self.mean),
                list(&self.std)
            ),
        )
    }
}
