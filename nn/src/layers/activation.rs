//! Activations, each one labelled node when named: `Relu`, `LeakyRelu`, `Clamp` (ReLU6),
//! `Sigmoid` and `Tanh`. Explanations pass relevance through all of them unchanged.

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{Error, NodeId, Op, Result, Tape};

/// Labels `y` with `name` when there is one: unnamed activations record a bare node.
fn finish(tape: &mut Tape, y: NodeId, name: &Option<String>) -> Result<NodeId> {
    match name {
        Some(n) => labelled(tape, y, n),
        None => Ok(y),
    }
}

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
        finish(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(self.name.as_deref(), "relu")
    }
}

/// Leaky ReLU, `x` where positive and `slope * x` elsewhere: one `leaky_relu` node.
#[derive(Clone, Debug)]
pub struct LeakyRelu {
    name: Option<String>,
    slope: f32,
}

impl LeakyRelu {
    /// An unnamed leaky ReLU (PyTorch's default slope is 0.01).
    pub fn new(slope: f32) -> Self {
        LeakyRelu { name: None, slope }
    }

    /// A leaky ReLU whose output node is labelled `name`.
    pub fn named(name: impl Into<String>, slope: f32) -> Self {
        LeakyRelu {
            name: Some(name.into()),
            slope,
        }
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The slope on the negative side.
    pub fn slope(&self) -> f32 {
        self.slope
    }
}

impl Module for LeakyRelu {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        // Checked here rather than at construction so the constructors stay infallible
        // like `Relu`'s; a NaN slope would otherwise poison every value silently.
        if !self.slope.is_finite() {
            return Err(Error::invalid(
                "LeakyRelu",
                format!("the slope {} is not finite", self.slope),
            ));
        }
        let y = tape.leaky_relu(x, self.slope)?;
        finish(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(
            self.name.as_deref(),
            &format!("leaky_relu slope={}", self.slope),
        )
    }
}

/// `min(max(x, min), max)`: one `clamp` node. [`Clamp::relu6`] is MobileNet's ReLU6.
#[derive(Clone, Debug)]
pub struct Clamp {
    name: Option<String>,
    min: f32,
    max: f32,
}

impl Clamp {
    /// An unnamed clamp to `min..=max`. Errors unless `min <= max` (neither NaN).
    pub fn new(min: f32, max: f32) -> Result<Self> {
        Self::build(None, min, max)
    }

    /// A clamp to `min..=max` whose output node is labelled `name`.
    pub fn named(name: impl Into<String>, min: f32, max: f32) -> Result<Self> {
        Self::build(Some(name.into()), min, max)
    }

    /// An unnamed ReLU6, `clamp(x, 0, 6)`.
    pub fn relu6() -> Self {
        Clamp {
            name: None,
            min: 0.0,
            max: 6.0,
        }
    }

    /// A ReLU6 whose output node is labelled `name`.
    pub fn relu6_named(name: impl Into<String>) -> Self {
        Clamp {
            name: Some(name.into()),
            ..Self::relu6()
        }
    }

    fn build(name: Option<String>, min: f32, max: f32) -> Result<Self> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::invalid(
                "Clamp",
                format!("the bounds {min}..{max} are not an interval"),
            ));
        }
        Ok(Clamp { name, min, max })
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The lower bound.
    pub fn min(&self) -> f32 {
        self.min
    }

    /// The upper bound.
    pub fn max(&self) -> f32 {
        self.max
    }
}

impl Module for Clamp {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.clamp(x, self.min, self.max)?;
        finish(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        let what = if (self.min, self.max) == (0.0, 6.0) {
            "relu6".to_string()
        } else {
            format!("clamp {}..{}", self.min, self.max)
        };
        line(self.name.as_deref(), &what)
    }
}

/// The logistic function `1 / (1 + exp(-x))`: one `sigmoid` node.
#[derive(Clone, Debug, Default)]
pub struct Sigmoid {
    name: Option<String>,
}

impl Sigmoid {
    /// An unnamed sigmoid.
    pub fn new() -> Self {
        Sigmoid { name: None }
    }

    /// A sigmoid whose output node is labelled `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Sigmoid {
            name: Some(name.into()),
        }
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Module for Sigmoid {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.record(Op::Sigmoid(x))?;
        finish(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(self.name.as_deref(), "sigmoid")
    }
}

/// The hyperbolic tangent: one `tanh` node.
#[derive(Clone, Debug, Default)]
pub struct Tanh {
    name: Option<String>,
}

impl Tanh {
    /// An unnamed tanh.
    pub fn new() -> Self {
        Tanh { name: None }
    }

    /// A tanh whose output node is labelled `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Tanh {
            name: Some(name.into()),
        }
    }

    /// The layer's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Module for Tanh {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.record(Op::Tanh(x))?;
        finish(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(self.name.as_deref(), "tanh")
    }
}
