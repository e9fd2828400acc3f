//! `Op`: what made a node, as plain data (input ids and attributes, never a closure).
//!
//! Because an op is data, the same recorded graph can be walked back by any rule: the
//! derivative in `derivative.rs`, or an LRP rule that matches on the variant.

use super::custom::CustomOp;
use super::NodeId;
use crate::tensor::{Conv2dSpec, Pool2dSpec, Tensor};
use std::fmt;
use std::sync::Arc;

/// Statistics a BatchNorm node normalises with.
#[derive(Clone, Debug, PartialEq)]
pub struct NormStats {
    /// Per-channel mean used by the forward pass.
    pub mean: Tensor,
    /// Per-channel (biased) variance used by the forward pass.
    pub var: Tensor,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// True in training mode: the statistics are the batch's own, so the derivative flows
    /// through them as well. False in eval mode: they are constants (running statistics).
    pub from_batch: bool,
}

/// One recorded operation. Variants carrying `NodeId`s read those nodes' values.
#[derive(Clone)]
pub enum Op {
    /// A value supplied from outside: an input or a parameter.
    Leaf {
        /// Whether a backward walk should deliver a signal here.
        requires_grad: bool,
    },
    /// `a + b` with broadcasting.
    Add(NodeId, NodeId),
    /// `a - b` with broadcasting.
    Sub(NodeId, NodeId),
    /// `a * b` with broadcasting.
    Mul(NodeId, NodeId),
    /// `a / b` with broadcasting.
    Div(NodeId, NodeId),
    /// `-x`.
    Neg(NodeId),
    /// `x + c`.
    AddScalar(NodeId, f32),
    /// `x * c`.
    MulScalar(NodeId, f32),
    /// `max(x, 0)`.
    Relu(NodeId),
    /// `e^x`.
    Exp(NodeId),
    /// `ln x`.
    Ln(NodeId),
    /// `tanh x`.
    Tanh(NodeId),
    /// `1 / (1 + e^-x)`.
    Sigmoid(NodeId),
    /// `x` where `x > 0`, else `slope * x`.
    LeakyRelu(NodeId, f32),
    /// `min(max(x, min), max)`; ReLU6 is `Clamp { min: 0, max: 6 }`.
    Clamp {
        /// Input.
        x: NodeId,
        /// Lower bound (may be `-inf`).
        min: f32,
        /// Upper bound (may be `inf`).
        max: f32,
    },
    /// Sum over axes.
    Sum {
        /// Input.
        x: NodeId,
        /// Reduced axes.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Mean over axes.
    Mean {
        /// Input.
        x: NodeId,
        /// Reduced axes.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Same values, new shape (flatten is a reshape).
    Reshape {
        /// Input.
        x: NodeId,
        /// New shape.
        shape: Vec<usize>,
    },
    /// Inputs joined along one axis (channel concatenation).
    Concat {
        /// The joined values, in order.
        inputs: Vec<NodeId>,
        /// The axis they are joined along.
        axis: usize,
    },
    /// Zeros added before and after each axis.
    Pad {
        /// Input.
        x: NodeId,
        /// Zeros before each axis.
        before: Vec<usize>,
        /// Zeros after each axis.
        after: Vec<usize>,
    },
    /// Reordered dimensions.
    Permute {
        /// Input.
        x: NodeId,
        /// Output dimension `i` is input dimension `perm[i]`.
        perm: Vec<usize>,
    },
    /// `a` where `cond` is non-zero, else `b` (no signal flows to `cond`).
    Where {
        /// Condition (a constant mask).
        cond: NodeId,
        /// Chosen where the condition holds.
        a: NodeId,
        /// Chosen elsewhere.
        b: NodeId,
    },
    /// Matrix product (2-D or batched).
    MatMul(NodeId, NodeId),
    /// Affine layer `y = x W^T + b`, one node so per-layer rules see the whole layer.
    Linear {
        /// Input `[n, in]`.
        x: NodeId,
        /// Weight `[out, in]`.
        w: NodeId,
        /// Optional bias `[out]`.
        b: Option<NodeId>,
    },
    /// 2-D convolution layer, one node for the same reason as `Linear`.
    Conv2d {
        /// Input `[n, c, h, w]`.
        x: NodeId,
        /// Weight `[out, c / groups, kh, kw]`.
        w: NodeId,
        /// Optional bias `[out]`.
        b: Option<NodeId>,
        /// Stride, padding, dilation and groups.
        spec: Conv2dSpec,
    },
    /// Max pooling; the winners are kept on the node for the backward pass.
    MaxPool2d {
        /// Input `[n, c, h, w]`.
        x: NodeId,
        /// Window, stride and padding.
        spec: Pool2dSpec,
    },
    /// Average pooling.
    AvgPool2d {
        /// Input `[n, c, h, w]`.
        x: NodeId,
        /// Window, stride and padding.
        spec: Pool2dSpec,
    },
    /// Per-channel normalisation `(x - mean) / sqrt(var + eps) * weight + bias`.
    BatchNorm2d {
        /// Input `[n, c, h, w]`.
        x: NodeId,
        /// Scale `[c]`.
        weight: NodeId,
        /// Shift `[c]`.
        bias: NodeId,
        /// The statistics used.
        stats: NormStats,
    },
    /// Softmax along an axis.
    Softmax {
        /// Input.
        x: NodeId,
        /// Normalised axis.
        axis: usize,
    },
    /// Log-softmax along an axis.
    LogSoftmax {
        /// Input.
        x: NodeId,
        /// Normalised axis.
        axis: usize,
    },
    /// A user-defined op (see [`CustomOp`]).
    Custom {
        /// Inputs in the order the op expects them.
        inputs: Vec<NodeId>,
        /// The op itself.
        op: Arc<dyn CustomOp>,
    },
}

impl Op {
    /// The ids this op reads, in a fixed order; rules return one signal per entry.
    pub fn inputs(&self) -> Vec<NodeId> {
        use Op::*;
        match self {
            Leaf { .. } => vec![],
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | MatMul(a, b) => vec![*a, *b],
            Neg(x)
            | AddScalar(x, _)
            | MulScalar(x, _)
            | Relu(x)
            | Exp(x)
            | Ln(x)
            | Tanh(x)
            | Sigmoid(x)
            | LeakyRelu(x, _)
            | Clamp { x, .. }
            | Pad { x, .. } => vec![*x],
            Sum { x, .. } | Mean { x, .. } | Reshape { x, .. } | Permute { x, .. } => vec![*x],
            MaxPool2d { x, .. }
            | AvgPool2d { x, .. }
            | Softmax { x, .. }
            | LogSoftmax { x, .. } => {
                vec![*x]
            }
            Where { cond, a, b } => vec![*cond, *a, *b],
            Linear { x, w, b } | Conv2d { x, w, b, .. } => {
                let mut v = vec![*x, *w];
                v.extend(b);
                v
            }
            BatchNorm2d {
                x, weight, bias, ..
            } => vec![*x, *weight, *bias],
            Custom { inputs, .. } | Concat { inputs, .. } => inputs.clone(),
        }
    }

    /// A short name for messages and audits, e.g. `conv2d`.
    pub fn name(&self) -> &str {
        use Op::*;
        match self {
            Leaf { .. } => "leaf",
            Add(..) => "add",
            Sub(..) => "sub",
            Mul(..) => "mul",
            Div(..) => "div",
            Neg(..) => "neg",
            AddScalar(..) => "add_scalar",
            MulScalar(..) => "mul_scalar",
            Relu(..) => "relu",
            Exp(..) => "exp",
            Ln(..) => "ln",
            Tanh(..) => "tanh",
            Sigmoid(..) => "sigmoid",
            LeakyRelu(..) => "leaky_relu",
            Clamp { .. } => "clamp",
            Concat { .. } => "concat",
            Pad { .. } => "pad",
            Sum { .. } => "sum",
            Mean { .. } => "mean",
            Reshape { .. } => "reshape",
            Permute { .. } => "permute",
            Where { .. } => "where",
            MatMul(..) => "matmul",
            Linear { .. } => "linear",
            Conv2d { .. } => "conv2d",
            MaxPool2d { .. } => "max_pool2d",
            AvgPool2d { .. } => "avg_pool2d",
            BatchNorm2d { .. } => "batch_norm2d",
            Softmax { .. } => "softmax",
            LogSoftmax { .. } => "log_softmax",
            Custom { op, .. } => op.name(),
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.name(), self.inputs())
    }
}
