//! Nodes with weights, resolved once at load time: convolutions and fully connected
//! layers (`Gemm`, `MatMul` by a constant), and BatchNorm's statistics.

use super::attrs::Attrs;
use super::error::ImportError;
use super::value::Const;
use crate::reader::Node;
use relprop_core::Tensor;
use relprop_nn::Param;

/// How a convolution pads its input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ConvPads {
    /// `[top, left, bottom, right]`.
    Explicit([usize; 4]),
    /// `SAME_UPPER` (extra padding at the end) or `SAME_LOWER`: depends on the input size.
    Same { upper: bool },
}

/// A convolution's parameters and geometry.
#[derive(Clone, Debug)]
pub(crate) struct ConvLayer {
    pub w: Param,
    pub b: Option<Param>,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub pads: ConvPads,
}

/// A fully connected layer `y = x W^T + b` (`transA` transposes `x` first).
#[derive(Clone, Debug)]
pub(crate) struct LinearLayer {
    pub w: Param,
    pub b: Option<Param>,
    pub trans_a: bool,
}

/// BatchNorm in inference mode (not folded: it follows no convolution).
#[derive(Clone, Debug)]
pub(crate) struct NormLayer {
    pub weight: Param,
    pub bias: Param,
    pub mean: Tensor,
    pub var: Tensor,
    pub eps: f32,
}

/// What a node does beyond its ONNX attributes.
#[derive(Clone, Debug)]
pub(crate) enum Layer {
    /// Interpreted from the node's attributes at run time.
    Plain,
    Conv(ConvLayer),
    Linear(LinearLayer),
    Norm(NormLayer),
}

fn two(v: &[usize]) -> [usize; 2] {
    [v[0], v[1]]
}

/// A constant float input of `node`, or an error naming what it is for.
fn weight<'c>(label: &str, what: &str, c: Option<&'c Const>) -> Result<&'c Tensor, ImportError> {
    match c {
        Some(Const::F(t)) => Ok(t),
        Some(Const::I(..)) => Err(ImportError::invalid(
            label,
            format!("the {what} must be floating point"),
        )),
        None => Err(ImportError::invalid(
            label,
            format!("the {what} must be a constant (an initializer), not a computed value"),
        )),
    }
}

/// Resolves a `Conv` node with constant weight `[out, in/groups, kh, kw]` and bias.
pub(crate) fn conv(
    node: &Node,
    label: &str,
    names: [&str; 2],
    w: Option<&Const>,
    b: Option<&Const>,
) -> Result<ConvLayer, ImportError> {
    let a = Attrs::new(node, label);
    let w = weight(label, "weight", w)?;
    let &[_, _, kh, kw] = w.shape() else {
        return Err(ImportError::invalid(
            label,
            format!(
                "only 2-D convolutions are supported (weight {:?})",
                w.shape()
            ),
        ));
    };
    if let Some(k) = a.ints("kernel_shape")? {
        if k != [kh as i64, kw as i64] {
            return Err(ImportError::invalid(
                label,
                format!("kernel_shape {k:?} differs from the weight {:?}", w.shape()),
            ));
        }
    }
    let groups = usize::try_from(a.int("group", 1)?)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| ImportError::invalid(label, "group must be at least 1"))?;
    let pads = match a.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => ConvPads::Explicit(a.sizes("pads", 4, 0)?.try_into().unwrap_or([0; 4])),
        "VALID" => ConvPads::Explicit([0; 4]),
        "SAME_UPPER" => ConvPads::Same { upper: true },
        "SAME_LOWER" => ConvPads::Same { upper: false },
        other => {
            return Err(ImportError::invalid(
                label,
                format!("auto_pad {other} is not supported"),
            ))
        }
    };
    let b = match b {
        Some(b) => Some(Param::new(
            names[1],
            weight(label, "bias", Some(b))?.clone(),
        )),
        None => None,
    };
    Ok(ConvLayer {
        w: Param::new(names[0], w.clone()),
        b,
        stride: two(&a.sizes("strides", 2, 1)?),
        dilation: two(&a.sizes("dilations", 2, 1)?),
        groups,
        pads,
    })
}

/// Resolves `Gemm` (`alpha * A' B' + beta * C`) with constant `B` into a linear layer.
pub(crate) fn gemm(
    node: &Node,
    label: &str,
    names: [&str; 2],
    bw: Option<&Const>,
    c: Option<&Const>,
) -> Result<LinearLayer, ImportError> {
    let a = Attrs::new(node, label);
    let bw = weight(label, "weight (input B)", bw)?;
    if bw.rank() != 2 {
        return Err(ImportError::invalid(
            label,
            format!("the weight must be 2-D, not {:?}", bw.shape()),
        ));
    }
    let err = |e: relprop_core::Error| ImportError::invalid(label, e.to_string());
    // A linear layer's weight is [out, in]: B itself when transB, else its transpose.
    let mut w = if a.int("transB", 0)? != 0 {
        bw.clone()
    } else {
        bw.transpose(0, 1).map_err(err)?
    };
    let alpha = a.float("alpha", 1.0)?;
    if alpha != 1.0 {
        w = w.mul_scalar(alpha);
    }
    let out = w.shape()[0];
    let b = match c {
        None => None,
        Some(c) => {
            let c = weight(label, "bias (input C)", Some(c))?;
            let beta = a.float("beta", 1.0)?;
            let per_out = match c.numel() {
                1 => Tensor::full(&[out], c.data()[0]),
                n if n == out && c.shape().iter().rev().skip(1).all(|&d| d == 1) => {
                    c.reshape(&[out]).map_err(err)?
                }
                _ => {
                    return Err(ImportError::invalid(
                        label,
                        format!(
                            "the bias {:?} must hold one value per output ({out})",
                            c.shape()
                        ),
                    ))
                }
            };
            Some(Param::new(
                names[1],
                if beta == 1.0 {
                    per_out
                } else {
                    per_out.mul_scalar(beta)
                },
            ))
        }
    };
    Ok(LinearLayer {
        w: Param::new(names[0], w),
        b,
        trans_a: a.int("transA", 0)? != 0,
    })
}

/// Resolves `MatMul(x, B)` with constant 2-D `B` `[in, out]` into a bias-free linear layer.
pub(crate) fn matmul(
    label: &str,
    name: &str,
    bw: Option<&Const>,
) -> Result<LinearLayer, ImportError> {
    let bw = weight(label, "right operand", bw)?;
    if bw.rank() != 2 {
        return Err(ImportError::invalid(
            label,
            format!(
                "MatMul by a constant needs a 2-D weight, not {:?}",
                bw.shape()
            ),
        ));
    }
    let w = bw
        .transpose(0, 1)
        .map_err(|e| ImportError::invalid(label, e.to_string()))?;
    Ok(LinearLayer {
        w: Param::new(name, w),
        b: None,
        trans_a: false,
    })
}

/// Resolves `BatchNormalization` in inference mode.
pub(crate) fn batch_norm(
    node: &Node,
    label: &str,
    names: [&str; 2],
    c: [Option<&Const>; 4],
) -> Result<NormLayer, ImportError> {
    let a = Attrs::new(node, label);
    if a.int("training_mode", 0)? != 0 {
        return Err(ImportError::invalid(
            label,
            "BatchNormalization in training mode is not supported",
        ));
    }
    let [g, b, m, v] = [
        ("scale", c[0]),
        ("bias", c[1]),
        ("mean", c[2]),
        ("variance", c[3]),
    ]
    .map(|(what, c)| weight(label, what, c).cloned());
    let (g, b, m, v) = (g?, b?, m?, v?);
    let ch = g.numel();
    if [&b, &m, &v].iter().any(|t| t.numel() != ch) {
        return Err(ImportError::invalid(
            label,
            "scale, bias, mean and variance must have one value per channel",
        ));
    }
    if v.data().iter().any(|&x| !x.is_finite() || x < 0.0) {
        return Err(ImportError::invalid(
            label,
            "the running variance must be finite and non-negative",
        ));
    }
    Ok(NormLayer {
        weight: Param::new(names[0], g),
        bias: Param::new(names[1], b),
        mean: m,
        var: v,
        eps: a.float("epsilon", 1e-5)?,
    })
}

/// Folds BatchNorm into the convolution before it: `w' = w g / sqrt(var + eps)`,
/// `b' = (b - mean) g / sqrt(var + eps) + beta` (a missing bias counts as zero).
pub(crate) fn fold_norm(
    conv: &mut ConvLayer,
    bn: &NormLayer,
    label: &str,
) -> Result<(), ImportError> {
    let out = conv.w.value.shape()[0];
    if bn.var.numel() != out {
        return Err(ImportError::invalid(
            label,
            format!(
                "BatchNorm has {} channels, the conv before it {out}",
                bn.var.numel()
            ),
        ));
    }
    let scale: Vec<f32> = bn
        .var
        .data()
        .iter()
        .zip(bn.weight.value.data())
        .map(|(&v, &g)| g / (v + bn.eps).sqrt())
        .collect();
    let per_out = conv.w.value.numel() / out.max(1);
    let w: Vec<f32> = conv
        .w
        .value
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| v * scale[i / per_out.max(1)])
        .collect();
    let b0 = conv
        .b
        .as_ref()
        .map(|b| b.value.data().to_vec())
        .unwrap_or_else(|| vec![0.0; out]);
    let b: Vec<f32> = (0..out)
        .map(|c| (b0[c] - bn.mean.data()[c]) * scale[c] + bn.bias.value.data()[c])
        .collect();
    let err = |e: relprop_core::Error| ImportError::invalid(label, e.to_string());
    conv.w.value = Tensor::from_vec(w, conv.w.value.shape()).map_err(err)?;
    let bias_name = conv
        .b
        .as_ref()
        .map_or_else(|| bn.bias.name.clone(), |b| b.name.clone());
    conv.b = Some(Param::new(
        bias_name,
        Tensor::from_vec(b, &[out]).map_err(err)?,
    ));
    Ok(())
}
