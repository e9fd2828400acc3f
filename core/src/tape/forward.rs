//! Forward evaluation of every op: how a recorded node gets its value.

use super::op::Op;
use super::{batchnorm, Saved, Tape};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::sync::Arc;

/// Computes the value of `op` from the values already on `tape`.
pub(super) fn eval(tape: &Tape, op: &Op) -> Result<(Tensor, Saved)> {
    let v = |id: usize| &tape.nodes[id].value;
    let plain = |t: Tensor| Ok((t, Saved::Nothing));
    match op {
        Op::Leaf { .. } => Err(Error::invalid("record", "leaves carry their own value")),
        Op::Add(a, b) => plain(v(*a).add(v(*b))?),
        Op::Sub(a, b) => plain(v(*a).sub(v(*b))?),
        Op::Mul(a, b) => plain(v(*a).mul(v(*b))?),
        Op::Div(a, b) => plain(v(*a).div(v(*b))?),
        Op::Neg(x) => plain(v(*x).neg()),
        Op::AddScalar(x, c) => plain(v(*x).add_scalar(*c)),
        Op::MulScalar(x, c) => plain(v(*x).mul_scalar(*c)),
        Op::Relu(x) => plain(v(*x).relu()),
        Op::Exp(x) => plain(v(*x).exp()),
        Op::Ln(x) => plain(v(*x).ln()),
        Op::Tanh(x) => plain(v(*x).map(f32::tanh)),
        Op::Sigmoid(x) => plain(v(*x).map(|t| 1.0 / (1.0 + (-t).exp()))),
        Op::LeakyRelu(x, slope) => plain(v(*x).map(|t| if t > 0.0 { t } else { slope * t })),
        Op::Clamp { x, min, max } => plain(v(*x).map(|t| t.max(*min).min(*max))),
        Op::Concat { inputs, axis } => {
            let parts: Vec<Tensor> = inputs.iter().map(|&i| v(i).clone()).collect();
            plain(Tensor::concat(&parts, *axis)?)
        }
        Op::Pad { x, before, after } => plain(v(*x).pad(before, after)?),
        Op::Sum { x, axes, keepdim } => plain(v(*x).sum(axes, *keepdim)?),
        Op::Mean { x, axes, keepdim } => plain(v(*x).mean(axes, *keepdim)?),
        Op::Reshape { x, shape } => plain(v(*x).reshape(shape)?),
        Op::Permute { x, perm } => plain(v(*x).permute(perm)?),
        Op::Where { cond, a, b } => plain(Tensor::where_cond(v(*cond), v(*a), v(*b))?),
        Op::MatMul(a, b) => plain(v(*a).matmul(v(*b))?),
        Op::Linear { x, w, b } => plain(v(*x).linear(v(*w), b.map(v))?),
        Op::Conv2d { x, w, b, spec } => plain(v(*x).conv2d(v(*w), b.map(v), spec)?),
        Op::MaxPool2d { x, spec } => {
            let (out, winners) = v(*x).max_pool2d(spec)?;
            Ok((out, Saved::Winners(Arc::new(winners))))
        }
        Op::AvgPool2d { x, spec } => plain(v(*x).avg_pool2d(spec)?),
        Op::BatchNorm2d {
            x,
            weight,
            bias,
            stats,
        } => plain(batchnorm::forward(v(*x), v(*weight), v(*bias), stats)?),
        Op::Softmax { x, axis } => plain(v(*x).softmax(*axis)?),
        Op::LogSoftmax { x, axis } => plain(v(*x).log_softmax(*axis)?),
        Op::Custom { inputs, op } => {
            let values: Vec<&Tensor> = inputs.iter().map(|&i| v(i)).collect();
            plain(op.forward(&values)?)
        }
    }
}
