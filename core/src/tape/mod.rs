//! The tape: an arena of recorded nodes, walked back by [`backward`] with swappable rules.
//! Start reading at [`backward`]: the whole idea of relprop fits in that one file.
//!
//! Recording appends a node, so a node's id is larger than its inputs' ids: creation order
//! is already a topological order, and the backward walk is a plain reverse loop.

pub mod backward;
mod batchnorm;
pub mod custom;
mod derivative;
mod forward;
pub mod op;
mod rewrite;

pub use backward::{Derivative, Exact, Rule, RuleSet, Signals};
pub use derivative::vjp;
pub use rewrite::Edit;

use crate::error::{Error, Result};
use crate::tensor::{Conv2dSpec, Pool2dSpec, Tensor};
use custom::CustomOp;
use op::{NormStats, Op};
use std::sync::Arc;

/// Index of a node on its tape.
pub type NodeId = usize;

/// Forward data an op keeps for its backward pass, beyond its output value.
#[derive(Clone, Debug, Default)]
pub enum Saved {
    /// Nothing beyond the output.
    #[default]
    Nothing,
    /// Max pooling: the flat input index of each output's winner.
    Winners(Arc<Vec<u32>>),
}

/// One recorded value: the op that made it, its output, and an optional layer label.
#[derive(Clone, Debug)]
pub struct Node {
    /// What made this node.
    pub op: Op,
    /// The forward value (immutable once recorded).
    pub value: Tensor,
    /// A layer name such as `features.conv1`, used by rule sets and audits.
    pub label: Option<String>,
    /// Extra forward data for the backward pass.
    pub saved: Saved,
    /// Whether some leaf that wants a signal lies below this node.
    tracks: bool,
}

impl Node {
    /// True when a backward walk has a reason to deliver a signal to this node.
    pub fn tracks(&self) -> bool {
        self.tracks
    }

    /// The op name, with the label when there is one: `conv2d (features.conv1)`.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(l) => format!("{} ({l})", self.op.name()),
            None => self.op.name().to_string(),
        }
    }
}

/// An arena of nodes recorded by a forward pass.
#[derive(Clone, Debug, Default)]
pub struct Tape {
    nodes: Vec<Node>,
    params_require_grad: bool,
}

impl Tape {
    /// An empty tape on which parameters want gradients (training mode).
    pub fn new() -> Self {
        Tape {
            nodes: Vec::new(),
            params_require_grad: true,
        }
    }

    /// An empty tape whose parameters are constants: a backward walk then computes only
    /// what reaches the inputs (explanations, saliency), never weight gradients.
    pub fn for_inference() -> Self {
        Tape {
            nodes: Vec::new(),
            params_require_grad: false,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes in creation order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this id, or an error if the id is not on this tape.
    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(id).ok_or_else(|| {
            Error::invalid(
                "tape",
                format!(
                    "node {id} does not exist (the tape has {})",
                    self.nodes.len()
                ),
            )
        })
    }

    /// The forward value of a node.
    pub fn value(&self, id: NodeId) -> Result<&Tensor> {
        Ok(&self.node(id)?.value)
    }

    /// Attaches a label (a layer name) to a node.
    pub fn set_label(&mut self, id: NodeId, label: impl Into<String>) -> Result<()> {
        self.node(id)?;
        self.nodes[id].label = Some(label.into());
        Ok(())
    }

    /// The most recent node carrying `label`.
    pub fn find(&self, label: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .rposition(|n| n.label.as_deref() == Some(label))
    }

    /// Errors naming the first labelled layer output (in recording order), then `output`,
    /// whose value holds NaN or an infinity. A forward pass can overflow on a finite but
    /// huge input, and a later ReLU turns the NaN into zeros: without this check such a
    /// pass would end in finite but meaningless logits.
    ///
    /// Parameters are not scanned here: every pass would read all the weights again (a
    /// tenth of an EfficientNet forward pass), the loaders check them once, and a NaN or
    /// infinite weight makes the output of its layer non-finite, which names the layer.
    pub fn check_finite(&self, op: &'static str, output: NodeId) -> Result<()> {
        let layers = self
            .nodes
            .iter()
            .filter(|n| n.label.is_some() && !matches!(n.op, Op::Leaf { .. }));
        let bad = layers
            .chain(std::iter::once(self.node(output)?))
            .find(|n| !n.value.all_finite());
        let Some(node) = bad else {
            return Ok(());
        };
        let name = node.label.as_deref().unwrap_or("the model's output");
        Err(Error::invalid(
            op,
            if matches!(node.op, Op::Leaf { .. }) {
                format!("{name} holds NaN or infinite values")
            } else {
                format!("the activations of {name} are not finite (is the input within range?)")
            },
        ))
    }

    /// Records an input that wants a signal.
    pub fn leaf(&mut self, value: Tensor) -> NodeId {
        self.push_leaf(value, true, None)
    }

    /// Records a value that never receives a signal (masks, targets).
    pub fn constant(&mut self, value: Tensor) -> NodeId {
        self.push_leaf(value, false, None)
    }

    /// Records a parameter: it wants a signal unless the tape is for inference.
    pub fn param(&mut self, value: Tensor, label: impl Into<String>) -> NodeId {
        let wants = self.params_require_grad;
        self.push_leaf(value, wants, Some(label.into()))
    }

    fn push_leaf(&mut self, value: Tensor, requires_grad: bool, label: Option<String>) -> NodeId {
        self.nodes.push(Node {
            op: Op::Leaf { requires_grad },
            value,
            label,
            saved: Saved::Nothing,
            tracks: requires_grad,
        });
        self.nodes.len() - 1
    }

    /// Records any op: checks its inputs exist, evaluates it, appends the node.
    pub fn record(&mut self, op: Op) -> Result<NodeId> {
        if let Op::Leaf { .. } = op {
            return Err(Error::invalid(
                "record",
                "use leaf, constant or param to add a leaf",
            ));
        }
        let inputs = op.inputs();
        for &i in &inputs {
            self.node(i)?;
        }
        let (value, saved) = forward::eval(self, &op)?;
        let tracks = match &op {
            // The condition of `where` never receives a signal.
            Op::Where { a, b, .. } => self.nodes[*a].tracks || self.nodes[*b].tracks,
            _ => inputs.iter().any(|&i| self.nodes[i].tracks),
        };
        self.nodes.push(Node {
            op,
            value,
            label: None,
            saved,
            tracks,
        });
        Ok(self.nodes.len() - 1)
    }

    /// `a + b` (broadcasting).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.record(Op::Add(a, b))
    }
    /// `a - b` (broadcasting).
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.record(Op::Sub(a, b))
    }
    /// `a * b` (broadcasting).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.record(Op::Mul(a, b))
    }
    /// `a / b` (broadcasting).
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.record(Op::Div(a, b))
    }
    /// `max(x, 0)`.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId> {
        self.record(Op::Relu(x))
    }
    /// `x` where positive, else `slope * x`.
    pub fn leaky_relu(&mut self, x: NodeId, slope: f32) -> Result<NodeId> {
        self.record(Op::LeakyRelu(x, slope))
    }
    /// `min(max(x, min), max)` (ReLU6 is `clamp(x, 0, 6)`).
    pub fn clamp(&mut self, x: NodeId, min: f32, max: f32) -> Result<NodeId> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::invalid(
                "clamp",
                format!("the bounds {min}..{max} are not an interval"),
            ));
        }
        self.record(Op::Clamp { x, min, max })
    }
    /// Joins values along `axis`.
    pub fn concat(&mut self, inputs: &[NodeId], axis: usize) -> Result<NodeId> {
        self.record(Op::Concat {
            inputs: inputs.to_vec(),
            axis,
        })
    }
    /// Zeros before and after each axis.
    pub fn pad(&mut self, x: NodeId, before: &[usize], after: &[usize]) -> Result<NodeId> {
        self.record(Op::Pad {
            x,
            before: before.to_vec(),
            after: after.to_vec(),
        })
    }
    /// Sum over `axes`.
    pub fn sum(&mut self, x: NodeId, axes: &[usize], keepdim: bool) -> Result<NodeId> {
        self.record(Op::Sum {
            x,
            axes: axes.to_vec(),
            keepdim,
        })
    }
    /// Mean over `axes`.
    pub fn mean(&mut self, x: NodeId, axes: &[usize], keepdim: bool) -> Result<NodeId> {
        self.record(Op::Mean {
            x,
            axes: axes.to_vec(),
            keepdim,
        })
    }
    /// New shape, same values.
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        self.record(Op::Reshape {
            x,
            shape: shape.to_vec(),
        })
    }
    /// Merges every dimension from `start` on.
    pub fn flatten(&mut self, x: NodeId, start: usize) -> Result<NodeId> {
        let shape = self.value(x)?.flatten(start)?.shape().to_vec();
        self.reshape(x, &shape)
    }
    /// Matrix product.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.record(Op::MatMul(a, b))
    }
    /// Affine layer `x W^T + b`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>) -> Result<NodeId> {
        self.record(Op::Linear { x, w, b })
    }
    /// Convolution layer.
    pub fn conv2d(
        &mut self,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        spec: Conv2dSpec,
    ) -> Result<NodeId> {
        self.record(Op::Conv2d { x, w, b, spec })
    }
    /// Max pooling.
    pub fn max_pool2d(&mut self, x: NodeId, spec: Pool2dSpec) -> Result<NodeId> {
        self.record(Op::MaxPool2d { x, spec })
    }
    /// Average pooling.
    pub fn avg_pool2d(&mut self, x: NodeId, spec: Pool2dSpec) -> Result<NodeId> {
        self.record(Op::AvgPool2d { x, spec })
    }
    /// BatchNorm over channels with the given statistics (see [`NormStats`]).
    pub fn batch_norm2d(
        &mut self,
        x: NodeId,
        weight: NodeId,
        bias: NodeId,
        stats: NormStats,
    ) -> Result<NodeId> {
        self.record(Op::BatchNorm2d {
            x,
            weight,
            bias,
            stats,
        })
    }
    /// BatchNorm in training mode: normalises with the batch's own statistics, which the
    /// recorded node keeps (read them from its `NormStats` to update running averages).
    pub fn batch_norm2d_train(
        &mut self,
        x: NodeId,
        weight: NodeId,
        bias: NodeId,
        eps: f32,
    ) -> Result<NodeId> {
        let (mean, var) = batchnorm::batch_stats(self.value(x)?)?;
        self.batch_norm2d(
            x,
            weight,
            bias,
            NormStats {
                mean,
                var,
                eps,
                from_batch: true,
            },
        )
    }
    /// Softmax along `axis`.
    pub fn softmax(&mut self, x: NodeId, axis: usize) -> Result<NodeId> {
        self.record(Op::Softmax { x, axis })
    }
    /// Log-softmax along `axis`.
    pub fn log_softmax(&mut self, x: NodeId, axis: usize) -> Result<NodeId> {
        self.record(Op::LogSoftmax { x, axis })
    }
    /// Records a user-defined op.
    pub fn custom(&mut self, op: impl CustomOp + 'static, inputs: &[NodeId]) -> Result<NodeId> {
        self.record(Op::Custom {
            inputs: inputs.to_vec(),
            op: Arc::new(op),
        })
    }
}
