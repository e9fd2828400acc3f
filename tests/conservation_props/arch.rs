//! Random architectures: the strategy, the layers, and how they print.

use proptest::prelude::*;
use relprop::core::Tensor;
use std::fmt;

// ---------------------------------------------------------------------------------------
// Architectures
// ---------------------------------------------------------------------------------------

/// How a general convolution groups its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Groups {
    One,
    /// Two groups (skipped when the input channels are odd).
    Two,
    /// One group per input channel, with a multiplier of 1 or 2 outputs per channel.
    Depthwise,
}

/// An activation other than ReLU. All of them pass relevance on unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Act {
    /// Leaky ReLU with slope `n / 100`.
    LeakyRelu(usize),
    Relu6,
    Sigmoid,
    Tanh,
}

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
    /// A convolution with groups, dilation, padding that may differ per side, and maybe
    /// no bias parameter (then a BatchNorm after it gives it one when folded).
    GeneralConv {
        out: usize,
        k: usize,
        stride: usize,
        pads: [usize; 4],
        dilation: usize,
        groups: Groups,
        bias: bool,
        bn: bool,
    },
    Relu,
    Act(Act),
    MaxPool,
    AvgPool,
    Flatten,
    Linear {
        out: usize,
    },
    Residual {
        k: usize,
    },
    /// Two branches joined along channels: conv `ka` + ReLU, and (average pooling 3x3
    /// stride 1 when `pool_b`) conv `kb`; both keep the plane.
    Concat {
        ca: usize,
        ka: usize,
        cb: usize,
        kb: usize,
        pool_b: bool,
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
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        dilation: usize,
        groups: usize,
        bias: bool,
    },
    BatchNorm {
        c: usize,
    },
    /// Per-channel `(x - mean) / std` with random constants, first when present.
    Normalize {
        c: usize,
    },
    Relu,
    Act(Act),
    MaxPool,
    AvgPool,
    Residual {
        c: usize,
        k: usize,
    },
    Concat {
        c: usize,
        ca: usize,
        ka: usize,
        cb: usize,
        kb: usize,
        pool_b: bool,
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
                pads,
                dilation,
                groups,
                bias,
            } => {
                // Only what differs from a plain conv, so plain ones print as before.
                let [t, l, b, r] = pads;
                let pad = if pads == [t; 4] {
                    t.to_string()
                } else {
                    format!("{t},{l}/{b},{r}")
                };
                write!(f, "conv {cin}->{cout} k{k} s{stride} p{pad}")?;
                if dilation > 1 {
                    write!(f, " d{dilation}")?;
                }
                if groups > 1 {
                    write!(f, " g{groups}")?;
                }
                if !bias {
                    write!(f, " no-bias")?;
                }
                Ok(())
            }
            Layer::BatchNorm { c } => write!(f, "batchnorm {c}"),
            Layer::Normalize { c } => write!(f, "normalize {c}"),
            Layer::Relu => write!(f, "relu"),
            Layer::Act(Act::LeakyRelu(n)) => write!(f, "leaky_relu {}", n as f32 / 100.0),
            Layer::Act(Act::Relu6) => write!(f, "relu6"),
            Layer::Act(Act::Sigmoid) => write!(f, "sigmoid"),
            Layer::Act(Act::Tanh) => write!(f, "tanh"),
            Layer::MaxPool => write!(f, "maxpool 2"),
            Layer::AvgPool => write!(f, "avgpool 2"),
            Layer::Residual { c, k } => write!(
                f,
                "residual(conv {c}->{c} k{k} p{p}, relu, conv {c}->{c} k{k} p{p}; identity)",
                p = k / 2
            ),
            Layer::Concat {
                c,
                ca,
                ka,
                cb,
                kb,
                pool_b,
            } => write!(
                f,
                "concat(conv {c}->{ca} k{ka} p{}, relu; {}conv {c}->{cb} k{kb} p{})",
                ka / 2,
                if pool_b { "avgpool 3 s1 p1, " } else { "" },
                kb / 2
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

/// The resolved general conv for `c` input channels on an `h x w` plane with its output
/// shape, or `None` when it does not fit (odd channels for two groups, a kernel larger
/// than the padded plane).
fn general_conv(t: Token, c: usize, h: usize, w: usize) -> Option<(Layer, [usize; 3])> {
    let Token::GeneralConv {
        out,
        k,
        stride,
        pads,
        dilation,
        groups,
        bias,
        ..
    } = t
    else {
        return None;
    };
    let (groups, cout) = match groups {
        Groups::One => (1, out),
        Groups::Two if c.is_multiple_of(2) => (2, 2 * out.div_ceil(2)),
        Groups::Two => return None,
        Groups::Depthwise => (c, c * (1 + (out - 1) % 2)),
    };
    let [top, left, bottom, right] = pads;
    let span = dilation * (k - 1) + 1;
    let (ph, pw) = (h + top + bottom, w + left + right);
    if ph < span || pw < span {
        return None;
    }
    let layer = Layer::Conv {
        cin: c,
        cout,
        k,
        stride,
        pads,
        dilation,
        groups,
        bias,
    };
    Some((
        layer,
        [cout, (ph - span) / stride + 1, (pw - span) / stride + 1],
    ))
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
                        pads: [pad; 4],
                        dilation: 1,
                        groups: 1,
                        bias: true,
                    });
                    if bn {
                        layers.push(Layer::BatchNorm { c: out });
                    }
                    shape = Shape::Image(out, oh, ow);
                }
                (Token::GeneralConv { bn, .. }, &Shape::Image(c, h, w)) => {
                    let Some((layer, [co, oh, ow])) = general_conv(t, c, h, w) else {
                        continue;
                    };
                    layers.push(layer);
                    if bn {
                        layers.push(Layer::BatchNorm { c: co });
                    }
                    shape = Shape::Image(co, oh, ow);
                }
                (Token::Relu, _) => layers.push(Layer::Relu),
                (Token::Act(a), _) => layers.push(Layer::Act(a)),
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
                (
                    Token::Concat {
                        ca,
                        ka,
                        cb,
                        kb,
                        pool_b,
                    },
                    &Shape::Image(c, h, w),
                ) => {
                    layers.push(Layer::Concat {
                        c,
                        ca,
                        ka,
                        cb,
                        kb,
                        pool_b,
                    });
                    shape = Shape::Image(ca + cb, h, w);
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

    /// The same network with a normalisation of its input in front.
    pub(crate) fn normalized(mut self) -> Arch {
        self.layers.insert(0, Layer::Normalize { c: self.input[1] });
        self
    }

    pub(crate) fn has_batchnorm(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, Layer::BatchNorm { .. }))
    }

    /// Whether a sum or an average pooling (split by the stabilised Norm rule) is inside.
    pub(crate) fn has_norm(&self) -> bool {
        self.layers.iter().any(|l| {
            matches!(
                l,
                Layer::Residual { .. } | Layer::AvgPool | Layer::Concat { pool_b: true, .. }
            )
        })
    }

    /// Whether a sigmoid is inside: `sigmoid(0) = 1/2` gives outputs with `z = 0` relevance,
    /// which the rules drop (`0/0` as 0) or absorb (stabilisers), so sums over a whole walk
    /// no longer hold the seed's relevance even with zero biases.
    pub(crate) fn has_sigmoid(&self) -> bool {
        self.layers.contains(&Layer::Act(Act::Sigmoid))
    }

    /// Whether LRP-0 seeded with the target score must equal gradient x input: it does
    /// when every activation `a = f(z)` has `a = z f'(z)` (ReLU, leaky ReLU), so passing
    /// relevance on unchanged is the chain rule times the input; a saturating activation
    /// (ReLU6 above 6, sigmoid, tanh) or a shift of the input (a normalisation) breaks that.
    pub(crate) fn lrp0_is_gradient_x_input(&self) -> bool {
        !self.layers.iter().any(|l| {
            matches!(
                l,
                Layer::Normalize { .. } | Layer::Act(Act::Relu6 | Act::Sigmoid | Act::Tanh)
            )
        })
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
}

fn odd_kernel() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(3usize)]
}

pub(crate) fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => (1..=4usize, 1..=3usize, 1..=2usize, 0..=1usize, prop::bool::weighted(0.3))
            .prop_map(|(out, k, stride, pad, bn)| Token::Conv { out, k, stride, pad, bn }),
        2 => (
            (1..=4usize, 1..=3usize, 1..=2usize),
            [0..=1usize, 0..=1usize, 0..=1usize, 0..=1usize],
            1..=2usize,
            prop_oneof![Just(Groups::One), Just(Groups::Two), Just(Groups::Depthwise)],
            any::<bool>(),
            prop::bool::weighted(0.4),
        )
            .prop_map(|((out, k, stride), pads, dilation, groups, bias, bn)| Token::GeneralConv {
                out, k, stride, pads, dilation, groups, bias, bn,
            }),
        3 => Just(Token::Relu),
        2 => prop_oneof![
            (1..=30usize).prop_map(Act::LeakyRelu),
            Just(Act::Relu6),
            Just(Act::Sigmoid),
            Just(Act::Tanh),
        ]
        .prop_map(Token::Act),
        1 => Just(Token::MaxPool),
        1 => Just(Token::AvgPool),
        1 => Just(Token::Flatten),
        2 => (2..=8usize).prop_map(|out| Token::Linear { out }),
        1 => odd_kernel().prop_map(|k| Token::Residual { k }),
        1 => (1..=3usize, odd_kernel(), 1..=3usize, odd_kernel(), any::<bool>())
            .prop_map(|(ca, ka, cb, kb, pool_b)| Token::Concat { ca, ka, cb, kb, pool_b }),
    ]
}

pub(crate) fn arch() -> impl Strategy<Value = Arch> {
    (
        (1..=3usize, 1..=2usize, 6..=10usize, 6..=10usize),
        any::<bool>(),
        prop::collection::vec(token(), 0..=7),
        2..=4usize,
        (any::<u64>(), any::<u64>()),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |((n, c, h, w), nonneg, tokens, classes, seeds, normalize)| {
                let arch = Arch::new([n, c, h, w], nonneg, &tokens, classes, seeds);
                if normalize {
                    arch.normalized()
                } else {
                    arch
                }
            },
        )
}
