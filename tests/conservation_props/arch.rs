//! Random architectures: the strategy, the layers, and how they print.

use proptest::prelude::*;
use relprop::core::{Conv2dSpec, Rng, Tensor};
use relprop::nn::{
    AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Relu, Residual, Sequential,
};
use std::fmt;

// ---------------------------------------------------------------------------------------
// Architectures
// ---------------------------------------------------------------------------------------

/// A layer as drawn by the strategy, before shapes are known.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Token {
    Conv {
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bn: bool,
    },
    Relu,
    MaxPool,
    AvgPool,
    Flatten,
    Linear {
        out: usize,
    },
    Residual {
        k: usize,
    },
}

/// A layer with its shapes resolved.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Layer {
    Conv {
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    BatchNorm {
        c: usize,
    },
    Relu,
    MaxPool,
    AvgPool,
    Residual {
        c: usize,
        k: usize,
    },
    Flatten {
        features: usize,
    },
    Linear {
        fin: usize,
        fout: usize,
    },
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layer::Conv {
                cin,
                cout,
                k,
                stride,
                pad,
            } => write!(f, "conv {cin}->{cout} k{k} s{stride} p{pad}"),
            Layer::BatchNorm { c } => write!(f, "batchnorm {c}"),
            Layer::Relu => write!(f, "relu"),
            Layer::MaxPool => write!(f, "maxpool 2"),
            Layer::AvgPool => write!(f, "avgpool 2"),
            Layer::Residual { c, k } => write!(
                f,
                "residual(conv {c}->{c} k{k} p{p}, relu, conv {c}->{c} k{k} p{p}; identity)",
                p = k / 2
            ),
            Layer::Flatten { features } => write!(f, "flatten {features}"),
            Layer::Linear { fin, fout } => write!(f, "linear {fin}->{fout}"),
        }
    }
}

/// A random network and its input, fully determined by these fields.
#[derive(Clone)]
pub(crate) struct Arch {
    /// Input `[batch, channels, height, width]`.
    pub(crate) input: [usize; 4],
    /// Inputs uniform in `[0, 1)` (true) or `[-1, 1)`.
    pub(crate) nonneg: bool,
    pub(crate) layers: Vec<Layer>,
    pub(crate) weight_seed: u64,
    pub(crate) input_seed: u64,
}

impl fmt::Debug for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layers: Vec<String> = self.layers.iter().map(|l| format!("{l:?}")).collect();
        write!(
            f,
            "\n  architecture: {}\n  input: {:?} uniform in {} (seed {}): {:?}\n  weights: seed {}\n",
            layers.join(", "),
            self.input,
            if self.nonneg { "[0, 1)" } else { "[-1, 1)" },
            self.input_seed,
            self.x(),
            self.weight_seed
        )
    }
}

/// Biases: all zero (and BatchNorm shifts that fold to a zero bias), or random.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bias {
    Zero,
    Random,
}

impl Arch {
    /// Resolves the drawn tokens against the running shape, dropping those that do not fit.
    pub(crate) fn new(
        input: [usize; 4],
        nonneg: bool,
        tokens: &[Token],
        classes: usize,
        seeds: (u64, u64),
    ) -> Arch {
        enum Shape {
            Image(usize, usize, usize),
            Flat(usize),
        }
        let [_, c0, h0, w0] = input;
        let mut shape = Shape::Image(c0, h0, w0);
        let mut layers = Vec::new();
        let flatten = |layers: &mut Vec<Layer>, c: usize, h: usize, w: usize| {
            layers.push(Layer::Flatten {
                features: c * h * w,
            });
            c * h * w
        };
        for &t in tokens {
            match (t, &shape) {
                (
                    Token::Conv {
                        out,
                        k,
                        stride,
                        pad,
                        bn,
                    },
                    &Shape::Image(c, h, w),
                ) => {
                    if h + 2 * pad < k || w + 2 * pad < k {
                        continue;
                    }
                    let (oh, ow) = (
                        (h + 2 * pad - k) / stride + 1,
                        (w + 2 * pad - k) / stride + 1,
                    );
                    layers.push(Layer::Conv {
                        cin: c,
                        cout: out,
                        k,
                        stride,
                        pad,
                    });
                    if bn {
                        layers.push(Layer::BatchNorm { c: out });
                    }
                    shape = Shape::Image(out, oh, ow);
                }
                (Token::Relu, _) => layers.push(Layer::Relu),
                (Token::MaxPool | Token::AvgPool, &Shape::Image(c, h, w)) if h >= 2 && w >= 2 => {
                    layers.push(if matches!(t, Token::MaxPool) {
                        Layer::MaxPool
                    } else {
                        Layer::AvgPool
                    });
                    shape = Shape::Image(c, h / 2, w / 2);
                }
                (Token::Residual { k }, &Shape::Image(c, h, w)) if h >= k && w >= k => {
                    layers.push(Layer::Residual { c, k });
                }
                (Token::Flatten, &Shape::Image(c, h, w)) => {
                    shape = Shape::Flat(flatten(&mut layers, c, h, w));
                }
                (Token::Linear { out }, _) => {
                    let fin = match shape {
                        Shape::Image(c, h, w) => flatten(&mut layers, c, h, w),
                        Shape::Flat(d) => d,
                    };
                    layers.push(Layer::Linear { fin, fout: out });
                    shape = Shape::Flat(out);
                }
                _ => {} // does not fit the current shape
            }
        }
        let fin = match shape {
            Shape::Image(c, h, w) => flatten(&mut layers, c, h, w),
            Shape::Flat(d) => d,
        };
        layers.push(Layer::Linear { fin, fout: classes });
        Arch {
            input,
            nonneg,
            layers,
            weight_seed: seeds.0,
            input_seed: seeds.1,
        }
    }

    pub(crate) fn has_batchnorm(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, Layer::BatchNorm { .. }))
    }

    /// The input batch.
    pub(crate) fn x(&self) -> Tensor {
        let lo = if self.nonneg { 0.0 } else { -1.0 };
        Tensor::rand_uniform(&self.input, lo, 1.0, self.input_seed)
    }

    /// The label of the output layer (the last linear).
    pub(crate) fn head(&self) -> String {
        format!("l{}.linear", self.layers.len() - 1)
    }

    /// The network, every layer labelled `l<i>.<kind>`.
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
                    pad,
                } => net.push(conv(
                    &name("conv"),
                    (cin, cout, k),
                    Conv2dSpec::new(stride, pad),
                    bias,
                    &mut rng,
                )),
                Layer::BatchNorm { c } => net.push(batchnorm(&name("bn"), c, bias, &mut rng)),
                Layer::Relu => net.push(Relu::named(name("relu"))),
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

/// A conv with a bias parameter (BatchNorm folding needs one), zero or random.
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
/// folded bias `(0 - mean) * scale + beta` is exactly 0 (the fold computes the same `scale`).
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

pub(crate) fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => (1..=4usize, 1..=3usize, 1..=2usize, 0..=1usize, prop::bool::weighted(0.3))
            .prop_map(|(out, k, stride, pad, bn)| Token::Conv { out, k, stride, pad, bn }),
        3 => Just(Token::Relu),
        1 => Just(Token::MaxPool),
        1 => Just(Token::AvgPool),
        1 => Just(Token::Flatten),
        2 => (2..=8usize).prop_map(|out| Token::Linear { out }),
        1 => prop_oneof![Just(1usize), Just(3usize)].prop_map(|k| Token::Residual { k }),
    ]
}

pub(crate) fn arch() -> impl Strategy<Value = Arch> {
    (
        (1..=3usize, 1..=2usize, 6..=10usize, 6..=10usize),
        any::<bool>(),
        prop::collection::vec(token(), 0..=7),
        2..=4usize,
        (any::<u64>(), any::<u64>()),
    )
        .prop_map(|((n, c, h, w), nonneg, tokens, classes, seeds)| {
            Arch::new([n, c, h, w], nonneg, &tokens, classes, seeds)
        })
}
