//! `Conv2d`: a 2-D convolution layer, recorded as one `conv2d` node.

use super::{labelled, line};
use crate::init;
use crate::module::{Mode, Module, Param};
use relprop_core::{Conv2dSpec, Error, NodeId, Result, Rng, Tape, Tensor};

/// A convolution with weight `[out, in / groups, kh, kw]` and optional bias `[out]`, as
/// `torch.nn.Conv2d` (stride, padding, dilation and groups in `spec`).
#[derive(Clone, Debug)]
pub struct Conv2d {
    name: String,
    /// Stride, zero padding (possibly asymmetric), dilation and groups.
    pub spec: Conv2dSpec,
    /// `{name}.weight`, shape `[out, in / groups, kh, kw]`.
    pub weight: Param,
    /// `{name}.bias`, shape `[out]`, if the layer has one.
    pub bias: Option<Param>,
}

impl Conv2d {
    /// A layer initialised like PyTorch's default: weight and bias
    /// `U(±1/sqrt(in * kh * kw))`. `spec` is usually `Conv2dSpec::new(stride, padding)`;
    /// its `groups` must be 1 (see [`Conv2d::grouped`] for more groups).
    pub fn new(
        name: impl Into<String>,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        spec: Conv2dSpec,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let name = name.into();
        let shape = [out_channels, in_channels, kernel[0], kernel[1]];
        // Only a zero fan fails, and then the weight has no elements: zeros are exact.
        let w = init::default_weight(&shape, rng).unwrap_or_else(|_| Tensor::zeros(&shape));
        let fan_in = in_channels * kernel[0] * kernel[1];
        let b = bias.then(|| init::default_bias(out_channels, fan_in, rng));
        Conv2d {
            spec,
            weight: Param::new(format!("{name}.weight"), w),
            bias: b.map(|b| Param::new(format!("{name}.bias"), b)),
            name,
        }
    }

    /// A layer of `spec.groups` channel groups (depthwise when `groups == in_channels`),
    /// initialised like PyTorch's default: weight `[out, in / groups, kh, kw]` and bias
    /// `U(±1/sqrt(in / groups * kh * kw))`. Errors when the groups do not divide both
    /// channel counts.
    pub fn grouped(
        name: impl Into<String>,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        spec: Conv2dSpec,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Self> {
        let groups = spec.groups;
        if groups == 0
            || !in_channels.is_multiple_of(groups)
            || !out_channels.is_multiple_of(groups)
        {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "{groups} groups must be at least 1 and divide the {in_channels} input and {out_channels} output channels"
                ),
            ));
        }
        let one_group = Conv2dSpec { groups: 1, ..spec };
        let layer = Conv2d::new(
            name,
            in_channels / groups,
            out_channels,
            kernel,
            one_group,
            bias,
            rng,
        );
        Ok(Conv2d { spec, ..layer })
    }

    /// A layer with the given weight `[out, in / groups, kh, kw]` and bias `[out]`; the
    /// output channels must split into `spec.groups` groups.
    pub fn from_params(
        name: impl Into<String>,
        weight: Tensor,
        bias: Option<Tensor>,
        spec: Conv2dSpec,
    ) -> Result<Self> {
        let name = name.into();
        let (weight, bias) = super::affine_params(
            "Conv2d",
            &name,
            (weight, 4, "[out, in / groups, kh, kw]"),
            bias,
        )?;
        let (out, groups) = (weight.value.shape()[0], spec.groups);
        if groups == 0 || !out.is_multiple_of(groups) {
            return Err(Error::shape(
                "Conv2d",
                &[weight.value.shape()],
                format!("{groups} groups must be at least 1 and divide the {out} output channels"),
            ));
        }
        Ok(Conv2d {
            spec,
            weight,
            bias,
            name,
        })
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Input channels (all groups).
    pub fn in_channels(&self) -> usize {
        self.weight.value.shape()[1] * self.spec.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.value.shape()[0]
    }

    /// Kernel size `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        let s = self.weight.value.shape();
        [s[2], s[3]]
    }
}

impl Module for Conv2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let w = self.weight.record(tape);
        let b = self.bias.as_ref().map(|b| b.record(tape));
        let y = tape.conv2d(x, w, b, self.spec)?;
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
        let [kh, kw] = self.kernel();
        let k = if kh == kw {
            format!("k{kh}")
        } else {
            format!("k{kh}x{kw}")
        };
        let axes = |a: [usize; 2]| {
            if a[0] == a[1] {
                a[0].to_string()
            } else {
                format!("{}x{}", a[0], a[1])
            }
        };
        let spec = &self.spec;
        // Only what differs from a plain convolution, so plain layers read as before.
        let pad = if spec.padding == spec.padding_end {
            axes(spec.padding)
        } else {
            format!("{}/{}", axes(spec.padding), axes(spec.padding_end))
        };
        let dilation = if spec.dilation == [1, 1] {
            String::new()
        } else {
            format!(" d{}", axes(spec.dilation))
        };
        let groups = match spec.groups {
            1 => String::new(),
            g => format!(" g{g}"),
        };
        let bias = if self.bias.is_some() { "" } else { " no-bias" };
        let what = format!(
            "conv2d {}->{} {k} s{} p{pad}{dilation}{groups}{bias}",
            self.in_channels(),
            self.out_channels(),
            axes(spec.stride),
        );
        line(Some(&self.name), &what)
    }
}
