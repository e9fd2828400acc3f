//! Building the network of an architecture, with seeded weights and biases.

use relprop::core::{Conv2dSpec, Rng, Tensor};
use relprop::nn::{
    AvgPool2d, BatchNorm2d, Clamp, Concat, Conv2d, Flatten, LeakyRelu, Linear, MaxPool2d,
    Normalize, Relu, Residual, Sequential, Sigmoid, Tanh,
};

use crate::arch::*;

impl Arch {
    /// The network, every layer labelled `l<i>.<kind>` (inside blocks `l<i>.res.<kind>`,
    /// `l<i>.cat.a.<kind>`).
    pub(crate) fn model(&self, bias: Bias) -> Sequential {
        let mut rng = Rng::new(self.weight_seed);
        let mut net = Sequential::new("random");
        for (i, layer) in self.layers.iter().enumerate() {
            let name = |kind: &str| format!("l{i}.{kind}");
            match *layer {
                Layer::Conv {
                    cin,
                    cout,
                    k,
                    stride,
                    pads: [t, l, b, r],
                    dilation,
                    groups,
                    bias: has_bias,
                } => {
                    let spec = Conv2dSpec::new(stride, 0)
                        .with_pads([t, l], [b, r])
                        .with_dilation([dilation; 2])
                        .with_groups(groups);
                    let mut c =
                        Conv2d::grouped(name("conv"), cin, cout, [k, k], spec, has_bias, &mut rng)
                            .unwrap();
                    set_bias(c.bias.as_mut().map(|p| &mut p.value), bias, &mut rng);
                    net.push(c);
                }
                Layer::BatchNorm { c } => net.push(batchnorm(&name("bn"), c, bias, &mut rng)),
                Layer::Normalize { c } => net.push(normalize(&name("norm"), c, &mut rng)),
                Layer::Relu => net.push(Relu::named(name("relu"))),
                Layer::Act(Act::LeakyRelu(n)) => {
                    net.push(LeakyRelu::named(name("leaky_relu"), n as f32 / 100.0))
                }
                Layer::Act(Act::Relu6) => net.push(Clamp::relu6_named(name("relu6"))),
                Layer::Act(Act::Sigmoid) => net.push(Sigmoid::named(name("sigmoid"))),
                Layer::Act(Act::Tanh) => net.push(Tanh::named(name("tanh"))),
                Layer::MaxPool => net.push(MaxPool2d::new(name("maxpool"), 2, 2, 0)),
                Layer::AvgPool => net.push(AvgPool2d::new(name("avgpool"), 2, 2, 0)),
                Layer::Residual { c, k } => {
                    let spec = Conv2dSpec::new(1, k / 2);
                    let body = Sequential::new(name("res.body"))
                        .with(conv(&name("res.conv1"), (c, c, k), spec, bias, &mut rng))
                        .with(Relu::named(name("res.relu")))
                        .with(conv(&name("res.conv2"), (c, c, k), spec, bias, &mut rng));
                    net.push(Residual::new(name("res"), body, None));
                }
                Layer::Concat {
                    c,
                    ca,
                    ka,
                    cb,
                    kb,
                    pool_b,
                } => {
                    let a = Sequential::new(name("cat.a"))
                        .with(conv(
                            &name("cat.a.conv"),
                            (c, ca, ka),
                            Conv2dSpec::new(1, ka / 2),
                            bias,
                            &mut rng,
                        ))
                        .with(Relu::named(name("cat.a.relu")));
                    let mut b = Sequential::new(name("cat.b"));
                    if pool_b {
                        b.push(AvgPool2d::new(name("cat.b.avgpool"), 3, 1, 1));
                    }
                    b.push(conv(
                        &name("cat.b.conv"),
                        (c, cb, kb),
                        Conv2dSpec::new(1, kb / 2),
                        bias,
                        &mut rng,
                    ));
                    net.push(Concat::new(name("cat")).with(a).with(b));
                }
                Layer::Flatten { .. } => net.push(Flatten::named(name("flatten"))),
                Layer::Linear { fin, fout } => {
                    let mut l = Linear::new(name("linear"), fin, fout, true, &mut rng);
                    set_bias(l.bias.as_mut().map(|p| &mut p.value), bias, &mut rng);
                    net.push(l);
                }
            }
        }
        net
    }
}

pub(crate) fn set_bias(b: Option<&mut Tensor>, bias: Bias, rng: &mut Rng) {
    if let Some(b) = b {
        let n = b.numel();
        *b = match bias {
            Bias::Zero => Tensor::zeros(&[n]),
            Bias::Random => {
                Tensor::from_vec((0..n).map(|_| rng.uniform(-0.5, 0.5)).collect(), &[n]).unwrap()
            }
        };
    }
}

/// A conv with a bias parameter, zero or random.
pub(crate) fn conv(
    name: &str,
    (cin, cout, k): (usize, usize, usize),
    spec: Conv2dSpec,
    bias: Bias,
    rng: &mut Rng,
) -> Conv2d {
    let mut c = Conv2d::new(name, cin, cout, [k, k], spec, true, rng);
    set_bias(c.bias.as_mut().map(|p| &mut p.value), bias, rng);
    c
}

/// Eval-mode BatchNorm with random statistics. With `Bias::Zero` its shift is chosen so the
/// folded bias `(b - mean) * scale + beta` is exactly 0 for a conv whose bias `b` is 0 or
/// absent (the fold computes the same `scale`).
pub(crate) fn batchnorm(name: &str, c: usize, bias: Bias, rng: &mut Rng) -> BatchNorm2d {
    let mut bn = BatchNorm2d::new(name, c);
    let mut draw = |lo: f32, hi: f32| -> Vec<f32> { (0..c).map(|_| rng.uniform(lo, hi)).collect() };
    let mean = draw(-0.5, 0.5);
    let var = draw(0.5, 2.0);
    let gamma: Vec<f32> = draw(0.5, 1.5)
        .into_iter()
        .zip(draw(-1.0, 1.0))
        .map(|(g, s)| if s < 0.0 { -g } else { g })
        .collect();
    let beta: Vec<f32> = match bias {
        Bias::Zero => (0..c)
            .map(|o| mean[o] * (gamma[o] / (var[o] + bn.eps).sqrt()))
            .collect(),
        Bias::Random => draw(-0.5, 0.5),
    };
    let t = |v: Vec<f32>| Tensor::from_vec(v, &[c]).unwrap();
    bn.running_mean.value = t(mean);
    bn.running_var.value = t(var);
    bn.weight.value = t(gamma);
    bn.bias.value = t(beta);
    bn
}

/// An input normalisation with random means in [-0.5, 0.5] and stds in [0.25, 2]: a shift
/// of the input, which relevance passes through unchanged whatever the biases.
pub(crate) fn normalize(name: &str, c: usize, rng: &mut Rng) -> Normalize {
    let mean = (0..c).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let std = (0..c).map(|_| rng.uniform(0.25, 2.0)).collect();
    Normalize::new(name, mean, std).unwrap()
}
