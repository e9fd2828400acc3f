//! `Linear`: the affine layer `y = x W^T + b`, recorded as one `linear` node.

use super::{labelled, line};
use crate::init;
use crate::module::{Mode, Module, Param};
use relprop_core::{NodeId, Result, Rng, Tape, Tensor};

/// A fully connected layer with weight `[out, in]` and optional bias `[out]`, as
/// `torch.nn.Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    name: String,
    /// `{name}.weight`, shape `[out, in]`.
    pub weight: Param,
    /// `{name}.bias`, shape `[out]`, if the layer has one.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer initialised like PyTorch's default: weight and bias `U(±1/sqrt(in))`.
    pub fn new(
        name: impl Into<String>,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let name = name.into();
        let shape = [out_features, in_features];
        // Only a zero fan fails, and then the weight has no elements: zeros are exact.
        let w = init::default_weight(&shape, rng).unwrap_or_else(|_| Tensor::zeros(&shape));
        let b = bias.then(|| init::default_bias(out_features, in_features, rng));
        Linear {
            weight: Param::new(format!("{name}.weight"), w),
            bias: b.map(|b| Param::new(format!("{name}.bias"), b)),
            name,
        }
    }

    /// A layer with the given weight `[out, in]` and bias `[out]`.
    pub fn from_params(
        name: impl Into<String>,
        weight: Tensor,
        bias: Option<Tensor>,
    ) -> Result<Self> {
        let name = name.into();
        let (weight, bias) = super::affine_params("Linear", &name, (weight, 2, "[out, in]"), bias)?;
        Ok(Linear { weight, bias, name })
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of input features.
    pub fn in_features(&self) -> usize {
        self.weight.value.shape()[1]
    }

    /// Number of output features.
    pub fn out_features(&self) -> usize {
        self.weight.value.shape()[0]
    }
}

impl Module for Linear {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let w = self.weight.record(tape);
        let b = self.bias.as_ref().map(|b| b.record(tape));
        let y = tape.linear(x, w, b)?;
        labelled(tape, y, &self.name)
    }

    fn params(&self) -> Vec<&Param> {
        std::iter::once(&self.weight).chain(&self.bias).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        std::iter::once(&mut self.weight)
            .chain(&mut self.bias)
            .collect()
    }

    fn describe(&self) -> String {
        let bias = if self.bias.is_some() { "" } else { " no-bias" };
        let what = format!(
            "linear {}->{}{bias}",
            self.in_features(),
            self.out_features()
        );
        line(Some(&self.name), &what)
    }
}
