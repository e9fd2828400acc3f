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

fn bn(name: String, channels: usize) -> BatchNorm2d {
    let mut bn = BatchNorm2d::new(name, channels);
    bn.eps = BN_EPS;
    bn
}

/// A `k`x`k` convolution without bias (BatchNorm follows every one): "SAME"-padded per
/// input when strided, `k / 2` on each side otherwise.
fn conv(
    name: String,
    (cin, cout): (usize, usize),
    k: usize,
    stride: usize,
    groups: usize,
    r: &mut Rng,
) -> Box<dyn Module> {
    let spec = Conv2dSpec {
        groups,
        ..Conv2dSpec::new(stride, k / 2)
    };
    // The group count always divides both channel counts here (1 or depthwise).
    let layer = Conv2d::grouped(name, cin, cout, [k, k], spec, false, r)
        .unwrap_or_else(|e| unreachable!("fixed architecture: {e}"));
    if stride == 1 {
        Box::new(layer)
    } else {
        Box::new(SameConv2d::new(layer))
    }
}

/// Block `i`: (1x1 expand, BN, ReLU6,) depthwise kxk, BN, ReLU6, 1x1 project, BN; with
/// an identity shortcut when it keeps the shape.
fn block(i: usize, cin: usize, s: &Stage, stride: usize, r: &mut Rng) -> Box<dyn Module> {
    let p = format!("_blocks.{i}");
    let mid = cin * s.expand;
    let mut body = Sequential::new(format!("{p}.body"));
    if s.expand != 1 {
        body.push_boxed(conv(format!("{p}._expand_conv"), (cin, mid), 1, 1, 1, r));
        body.push(bn(format!("{p}._bn0"), mid));
        body.push(Clamp::relu6_named(format!("{p}._relu0")));
    }
    body.push_boxed(conv(
        format!("{p}._depthwise_conv"),
        (mid, mid),
        s.kernel,
        stride,
        mid,
        r,
    ));
    body.push(bn(format!("{p}._bn1"), mid));
    body.push(Clamp::relu6_named(format!("{p}._relu1")));
    body.push_boxed(conv(
        format!("{p}._project_conv"),
        (mid, s.channels),
        1,
        1,
        1,
        r,
    ));
    body.push(bn(format!("{p}._bn2"), s.channels));
    if stride == 1 && cin == s.channels {
        Box::new(Residual::new(p, body, None))
    } else {
        Box::new(body)
    }
}

/// A freshly initialised EfficientNet-Lite0 (PyTorch default initialisation) drawing
/// from `r`; load the published weights over it.
pub fn efficientnet_lite0(r: &mut Rng) -> Sequential {
    let mut net = Sequential::new("efficientnet_lite0");
    let half = vec![0.5; 3];
    net.push(
        Normalize::new("_normalize", half.clone(), half)
            .unwrap_or_else(|e| unreachable!("fixed statistics: {e}")),
    );
    net.push_boxed(conv("_conv_stem".into(), (3, STEM), 3, 2, 1, r));
    net.push(bn("_bn0".into(), STEM));
    net.push(Clamp::relu6_named("_relu_stem"));
    let (mut cin, mut i) = (STEM, 0);
    for s in &STAGES {
        for rep in 0..s.repeats {
            let stride = if rep == 0 { s.stride } else { 1 };
            net.push_boxed(block(i, cin, s, stride, r));
            cin = s.channels;
            i += 1;
        }
    }
    net.push_boxed(conv("_conv_head".into(), (cin, HEAD), 1, 1, 1, r));
    net.push(bn("_bn1".into(), HEAD));
    net.push(Clamp::relu6_named("_relu_head"));
    net.push(GlobalAvgPool::new("_avg_pooling"));
    net.push(Linear::new("_fc", HEAD, CLASSES, true, r));
    net
}
