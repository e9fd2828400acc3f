//! The exact derivative of every op, as a vector-Jacobian product (VJP).
//!
//! Given the signal `g` at a node's output, return `J^T g` for each input. Inputs that no
//! signal needs to reach get `None`, so explaining a model never computes weight gradients.

use super::op::Op;
use super::{batchnorm, NodeId, Saved, Tape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `J^T g` for every input of node `id` (in `Op::inputs` order).
pub fn vjp(tape: &Tape, id: NodeId, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let node = tape.node(id)?;
    let v = |i: NodeId| &tape.nodes[i].value;
    let wants = |i: NodeId| tape.nodes[i].tracks;
    // Runs `f` only for inputs that want a signal.
    let want = |i: NodeId, f: &dyn Fn() -> Result<Tensor>| -> Result<Option<Tensor>> {
        if wants(i) {
            f().map(Some)
        } else {
            Ok(None)
        }
    };
    let y = &node.value;
    let one = |t: Result<Tensor>| -> Result<Vec<Option<Tensor>>> { Ok(vec![Some(t?)]) };
    match &node.op {
        Op::Leaf { .. } => Ok(vec![]),
        Op::Add(a, b) => Ok(vec![
            want(*a, &|| g.sum_to(v(*a).shape()))?,
            want(*b, &|| g.sum_to(v(*b).shape()))?,
        ]),
        Op::Sub(a, b) => Ok(vec![
            want(*a, &|| g.sum_to(v(*a).shape()))?,
            want(*b, &|| g.neg().sum_to(v(*b).shape()))?,
        ]),
        Op::Mul(a, b) => Ok(vec![
            want(*a, &|| g.mul(v(*b))?.sum_to(v(*a).shape()))?,
            want(*b, &|| g.mul(v(*a))?.sum_to(v(*b).shape()))?,
        ]),
        // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -y/b
        Op::Div(a, b) => Ok(vec![
            want(*a, &|| g.div(v(*b))?.sum_to(v(*a).shape()))?,
            want(*b, &|| g.mul(y)?.div(v(*b))?.neg().sum_to(v(*b).shape()))?,
        ]),
        Op::Neg(_) => one(Ok(g.neg())),
        Op::AddScalar(..) => one(Ok(g.clone())),
        Op::MulScalar(_, c) => one(Ok(g.mul_scalar(*c))),
        // The derivative at exactly 0 is taken as 0, as PyTorch does.
        Op::Relu(_) => one(g.zip_with(y, "relu", |g, y| if y > 0.0 { g } else { 0.0 })),
        Op::Exp(_) => one(g.mul(y)),
        Op::Ln(x) => one(g.div(v(*x))),
        Op::Tanh(_) => one(g.zip_with(y, "tanh", |g, y| g * (1.0 - y * y))),
        Op::Sigmoid(_) => one(g.zip_with(y, "sigmoid", |g, y| g * y * (1.0 - y))),
        Op::LeakyRelu(x, slope) => {
            one(g.zip_with(
                v(*x),
                "leaky_relu",
                |g, x| {
                    if x > 0.0 {
                        g
                    } else {
                        slope * g
                    }
                },
            ))
        }
        // Zero outside the open interval, as PyTorch's hardtanh (ReLU6) does at its bounds.
        Op::Clamp { x, min, max } => {
            one(g.zip_with(
                v(*x),
                "clamp",
                |g, x| {
                    if x > *min && x < *max {
                        g
                    } else {
                        0.0
                    }
                },
            ))
        }
        // The signal is split back into the joined parts.
        Op::Concat { inputs, axis } => {
            let mut start = 0;
            let mut out = Vec::with_capacity(inputs.len());
            for &i in inputs {
                let len = v(i).shape()[*axis];
                out.push(want(i, &|| g.narrow(*axis, start, len))?);
                start += len;
            }
            Ok(out)
        }
        Op::Pad { before, after, .. } => one(g.crop(before, after)),
        Op::Sum { x, axes, keepdim } => one(spread(g, v(*x).shape(), axes, *keepdim, 1.0)),
        Op::Mean { x, axes, keepdim } => {
            let count: usize = axes.iter().map(|&a| v(*x).shape()[a]).product();
            one(spread(g, v(*x).shape(), axes, *keepdim, 1.0 / count as f32))
        }
        Op::Reshape { x, .. } => one(g.reshape(v(*x).shape())),
        Op::Permute { perm, .. } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            one(g.permute(&inverse))
        }
        Op::Where { cond, a, b } => {
            let zero = Tensor::scalar(0.0);
            Ok(vec![
                None,
                want(*a, &|| {
                    Tensor::where_cond(v(*cond), g, &zero)?.sum_to(v(*a).shape())
                })?,
                want(*b, &|| {
                    Tensor::where_cond(v(*cond), &zero, g)?.sum_to(v(*b).shape())
                })?,
            ])
        }
        Op::MatMul(a, b) => Ok(vec![
            want(*a, &|| g.matmul_t(false, v(*b), true))?,
            want(*b, &|| matmul_rhs_grad(v(*a), g, v(*b).shape()))?,
        ]),
        Op::Linear { x, w, b } => {
            let mut out = vec![
                want(*x, &|| g.matmul(v(*w)))?,
                want(*w, &|| g.matmul_t(true, v(*x), false))?,
            ];
            if let Some(b) = b {
                out.push(want(*b, &|| g.sum(&[0], false))?);
            }
            Ok(out)
        }
        Op::Conv2d { x, w, b, spec } => {
            let gx = want(*x, &|| {
                Tensor::conv2d_input_grad(g, v(*w), v(*x).shape(), spec)
            })?;
            let needs_params = wants(*w) || b.is_some_and(wants);
            let (gw, gb) = if needs_params {
                let (gw, gb) = Tensor::conv2d_weight_grad(v(*x), g, v(*w).shape(), spec)?;
                (Some(gw), Some(gb))
            } else {
                (None, None)
            };
            let mut out = vec![gx, gw.filter(|_| wants(*w))];
            if let Some(b) = b {
                out.push(gb.filter(|_| wants(*b)));
            }
            Ok(out)
        }
        Op::MaxPool2d { x, spec } => match &node.saved {
            Saved::Winners(w) => one(Tensor::max_pool2d_grad(g, w, v(*x).shape(), spec)),
            Saved::Nothing => Err(Error::Backward {
                op: node.describe(),
                reason: "the max-pool winners were not saved".into(),
            }),
        },
        Op::AvgPool2d { x, spec } => one(Tensor::avg_pool2d_grad(g, v(*x).shape(), spec)),
        Op::BatchNorm2d {
            x,
            weight,
            bias,
            stats,
        } => {
            let [gx, gw, gb] = batchnorm::vjp(v(*x), v(*weight), v(*bias), stats, g)?;
            Ok(vec![Some(gx), Some(gw), Some(gb)])
        }
        // softmax: J^T g = y * (g - <g, y>) along the axis.
        Op::Softmax { axis, .. } => {
            let dot = g.mul(y)?.sum(&[*axis], true)?;
            one(y.mul(&g.sub(&dot)?))
        }
        // log-softmax: J^T g = g - softmax(x) * sum(g) along the axis.
        Op::LogSoftmax { axis, .. } => {
            let total = g.sum(&[*axis], true)?;
            one(g.sub(&y.exp().mul(&total)?))
        }
        Op::Custom { inputs, op } => {
            let values: Vec<&Tensor> = inputs.iter().map(|&i| v(i)).collect();
            op.backward(&values, y, g)
        }
    }
}

/// Broadcasts the signal of a reduction back over the reduced axes, times `scale`.
fn spread(
    g: &Tensor,
    x_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
    scale: f32,
) -> Result<Tensor> {
    let kept: Vec<usize> = x_shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let g = if keepdim {
        g.clone()
    } else {
        g.reshape(&kept)?
    };
    Ok(g.broadcast_to(x_shape)?.mul_scalar(scale))
}

/// `A^T G` for `C = A B`, summing over the batch when `B` was shared by every batch item.
fn matmul_rhs_grad(a: &Tensor, g: &Tensor, b_shape: &[usize]) -> Result<Tensor> {
    if a.rank() == 3 && b_shape.len() == 2 {
        let (bm, k, n) = (a.shape()[0] * a.shape()[1], a.shape()[2], g.shape()[2]);
        return a
            .reshape(&[bm, k])?
            .matmul_t(true, &g.reshape(&[bm, n])?, false);
    }
    a.matmul_t(true, g, false)
}
