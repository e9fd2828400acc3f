//! `efficientnet_lite0`: EfficientNet-Lite0 (Tan and Le 2019; the "Lite" variant for
//! mobile accelerators), built from `nn` layers, with the parameter names of the PyTorch
//! state dict it is published in (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`,
//! `_bn1.running_var`, `_fc.bias`, ...), so those files load without renaming.
//!
//! Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 for Swish, and with
//! the stem and head kept at 32 and 1280 channels. The weights were trained in TensorFlow,
//! so the network computes what TensorFlow computes: BatchNorm with eps 1e-3, and every
//! stride-2 convolution with "SAME" padding ([`SameConv2d`]), so that any input size
//! works. Stride-1 convolutions pad `k / 2` on each side, which is the same thing. The
//! input normalisation `(x - 0.5) / 0.5` is the first layer, so the model takes RGB in
//! [0, 1]; the head pools globally, so 224x224 is the default, not a requirement.
//!
//! The network comes in two variants ([`BatchNorms`]): as published, every convolution
//! followed by its own BatchNorm, and folded, every convolution with a bias and no
//! BatchNorm after it. Both compute the same function at inference; the folded one records
//! one node fewer per convolution, and LRP needs no canonizer to explain it. Loading
//! weights gives the folded one ([`fold`]).

pub mod fold;

use crate::same_conv::SameConv2d;
use relprop_core::{Conv2dSpec, Rng};
use relprop_nn::{
    BatchNorm2d, Clamp, Conv2d, GlobalAvgPool, Linear, Module, Normalize, Residual, Sequential,
};

/// TensorFlow's BatchNorm epsilon, which the weights were trained with.
pub const BN_EPS: f32 = 1e-3;

/// One stage of inverted-residual blocks: expansion ratio, depthwise kernel, stride of
/// its first block, output channels, number of blocks.
struct Stage {
    expand: usize,
    kernel: usize,
    stride: usize,
    channels: usize,
    repeats: usize,
}

/// EfficientNet-B0's stages (Lite0 has the same widths and depths).
const STAGES: [Stage; 7] = [
    stage(1, 3, 1, 16, 1),
    stage(6, 3, 2, 24, 2),
    stage(6, 5, 2, 40, 2),
    stage(6, 3, 2, 80, 3),
    stage(6, 5, 1, 112, 3),
    stage(6, 5, 2, 192, 4),
    stage(6, 3, 1, 320, 1),
];

const fn stage(
    expand: usize,
    kernel: usize,
    stride: usize,
    channels: usize,
    repeats: usize,
) -> Stage {
    Stage {
        expand,
        kernel,
        stride,
        channels,
        repeats,
    }
}

/// Channels out of the stem and into the head.
const STEM: usize = 32;
/// Channels of the head's 1x1 convolution (the features the classifier sees).
const HEAD: usize = 1280;
/// ImageNet classes.
pub const CLASSES: usize = 1000;

/// Whether the convolutions are followed by BatchNorm layers or have them folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchNorms {
    /// Every convolution without bias, followed by a BatchNorm (eps [`BN_EPS`]): the
    /// published state dict's layout.
    Separate,
    /// Every convolution with a bias and no BatchNorm after it: what inference runs.
    Folded,
}

/// A convolution and the BatchNorm that follows it in the published network, by layer
/// name (`_blocks.3._depthwise_conv` and `_blocks.3._bn1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvBn {
    /// The convolution's name (its parameters are `{conv}.weight`, and `{conv}.bias`
    /// when folded).
    pub conv: String,
    /// The BatchNorm's name (`{bn}.weight`, `.bias`, `.running_mean`, `.running_var`).
    pub bn: String,
}

/// A built network with its convolution/BatchNorm pairs, in network order (recorded for
/// either variant: the folded one needs them to take the published weights).
pub struct Built {
    /// The layers.
    pub net: Sequential,
    /// Every convolution and the BatchNorm it has (or had, when folded).
    pub pairs: Vec<ConvBn>,
}

/// Builds either variant, recording each convolution/BatchNorm pair once.
struct Builder<'a> {
    batch_norms: BatchNorms,
    pairs: Vec<ConvBn>,
    r: &'a mut Rng,
}

/// One convolution's shape: channels in and out, kernel size, stride, groups.
struct ConvShape {
    channels: (usize, usize),
    kernel: usize,
    stride: usize,
    groups: usize,
}

impl ConvShape {
    /// A 1x1 convolution, stride 1.
    fn pointwise(cin: usize, cout: usize) -> Self {
        ConvShape {
            channels: (cin, cout),
            kernel: 1,
            stride: 1,
            groups: 1,
        }
    }
}

impl Builder<'_> {
    /// Pushes the convolution `conv` onto `seq` and, unless folded, the BatchNorm `bn`
    /// after it. "SAME"-padded per input when strided, `k / 2` on each side otherwise.
    fn conv_bn(&mut self, seq: &mut Sequential, conv: String, bn: String, shape: ConvShape) {
        let ConvShape {
            channels: (cin, cout),
            kernel: k,
            stride,
            groups,
        } = shape;
        let spec = Conv2dSpec {
            groups,
            ..Conv2dSpec::new(stride, k / 2)
        };
        let bias = self.batch_norms == BatchNorms::Folded;
        // The group count always divides both channel counts here (1 or depthwise).
        let layer = Conv2d::grouped(conv.clone(), cin, cout, [k, k], spec, bias, self.r)
            .unwrap_or_else(|e| unreachable!("fixed architecture: {e}"));
        if stride == 1 {
            seq.push(layer);
        } else {
            seq.push(SameConv2d::new(layer));
        }
        if self.batch_norms == BatchNorms::Separate {
            let mut norm = BatchNorm2d::new(bn.clone(), cout);
            norm.eps = BN_EPS;
            seq.push(norm);
        }
        self.pairs.push(ConvBn { conv, bn });
    }

    /// Block `i`: (1x1 expand, BN, ReLU6,) depthwise kxk, BN, ReLU6, 1x1 project, BN;
    /// with an identity shortcut when it keeps the shape.
    fn block(&mut self, i: usize, cin: usize, s: &Stage, stride: usize) -> Box<dyn Module> {
        let p = format!("_blocks.{i}");
        let mid = cin * s.expand;
        let mut body = Sequential::new(format!("{p}.body"));
        if s.expand != 1 {
            let (conv, bn) = (format!("{p}._expand_conv"), format!("{p}._bn0"));
            self.conv_bn(&mut body, conv, bn, ConvShape::pointwise(cin, mid));
            body.push(Clamp::relu6_named(format!("{p}._relu0")));
        }
        let depthwise = ConvShape {
            channels: (mid, mid),
            kernel: s.kernel,
            stride,
            groups: mid,
        };
        let (conv, bn) = (format!("{p}._depthwise_conv"), format!("{p}._bn1"));
        self.conv_bn(&mut body, conv, bn, depthwise);
        body.push(Clamp::relu6_named(format!("{p}._relu1")));
        let (conv, bn) = (format!("{p}._project_conv"), format!("{p}._bn2"));
        self.conv_bn(&mut body, conv, bn, ConvShape::pointwise(mid, s.channels));
        if stride == 1 && cin == s.channels {
            Box::new(Residual::new(p, body, None))
        } else {
            Box::new(body)
        }
    }
}

/// A freshly initialised EfficientNet-Lite0 (PyTorch default initialisation) drawing
/// from `r`, in the given variant; load the published weights over it.
pub fn build(batch_norms: BatchNorms, r: &mut Rng) -> Built {
    let mut b = Builder {
        batch_norms,
        pairs: Vec::new(),
        r,
    };
    let mut net = Sequential::new("efficientnet_lite0");
    let half = vec![0.5; 3];
    net.push(
        Normalize::new("_normalize", half.clone(), half)
            .unwrap_or_else(|e| unreachable!("fixed statistics: {e}")),
    );
    let stem = ConvShape {
        channels: (3, STEM),
        kernel: 3,
        stride: 2,
        groups: 1,
    };
    b.conv_bn(&mut net, "_conv_stem".into(), "_bn0".into(), stem);
    net.push(Clamp::relu6_named("_relu_stem"));
    let (mut cin, mut i) = (STEM, 0);
    for s in &STAGES {
        for rep in 0..s.repeats {
            let stride = if rep == 0 { s.stride } else { 1 };
            net.push_boxed(b.block(i, cin, s, stride));
            cin = s.channels;
            i += 1;
        }
    }
    let head = ConvShape::pointwise(cin, HEAD);
    b.conv_bn(&mut net, "_conv_head".into(), "_bn1".into(), head);
    net.push(Clamp::relu6_named("_relu_head"));
    net.push(GlobalAvgPool::new("_avg_pooling"));
    net.push(Linear::new("_fc", HEAD, CLASSES, true, b.r));
    Built {
        net,
        pairs: b.pairs,
    }
}
