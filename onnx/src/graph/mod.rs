//! An imported ONNX graph as a relprop model: a general DAG that records onto the tape.
//!
//! Loading resolves every weight once, folds constant sub-graphs, and rewrites the graph
//! into the form the LRP rules expect (the fixtures' semantics):
//! - a trailing `Softmax`/`LogSoftmax` is dropped: predictions and explanations start at
//!   the logits;
//! - `BatchNormalization` after a convolution is folded into it (a bias-free conv gets the
//!   folded bias);
//! - `MatMul` by a constant followed by `Add` of a constant becomes one linear layer;
//! - a zero `Pad` read only by a convolution becomes the convolution's padding.
//!
//! Each recorded node is labelled with its ONNX node name, so composites choose rules by
//! op kind, by first layer and by label exactly as for the zoo's models.

mod attrs;
mod error;
mod fold;
mod layer;
mod record;
mod rewrite;
mod shapes;
mod value;

pub use error::ImportError;
pub use value::Const;

use crate::reader::{read_model, Dim, Node, OnnxModel};
use layer::Layer;
use relprop_core::{NodeId, Result, Tape};
use relprop_nn::{Mode, Module, Param};
use std::collections::HashMap;
use std::path::Path;
use value::Val;

/// Every operator the importer accepts (constant sub-graphs of `Shape`, `Gather`, `Cast`
/// and friends are folded at load or run time).
pub const SUPPORTED_OPS: [&str; 33] = [
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Concat",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Flatten",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Pad",
    "BatchNormalization",
    "Dropout",
    "Identity",
    "Constant",
    "Shape",
    "Gather",
    "Cast",
    "Neg",
    "Softmax",
    "LogSoftmax",
];

/// The opsets whose operator definitions this importer follows.
pub const OPSETS: std::ops::RangeInclusive<i64> = 11..=21;

/// One node of the imported graph.
#[derive(Clone, Debug)]
pub(crate) struct GraphNode {
    /// The ONNX node (op type, inputs, outputs, attributes).
    pub node: Node,
    /// The label its recorded output carries: the ONNX name, or `OpType_index`.
    pub label: String,
    /// Resolved weights, if any.
    pub layer: Layer,
}

/// A model read from an `.onnx` file.
#[derive(Clone, Debug)]
pub struct OnnxNet {
    name: String,
    input: String,
    input_dims: Vec<Dim>,
    output: String,
    nodes: Vec<GraphNode>,
    consts: HashMap<String, Const>,
    notes: Vec<String>,
}

impl OnnxNet {
    /// Reads and imports an `.onnx` file (external data beside it).
    pub fn load(path: &Path) -> std::result::Result<Self, ImportError> {
        let model = read_model(path)?;
        let name = path
            .file_stem()
            .map_or_else(|| "onnx".to_string(), |s| s.to_string_lossy().into_owned());
        Self::from_model(&model, &name)
    }

    /// Imports a decoded model.
    pub fn from_model(model: &OnnxModel, name: &str) -> std::result::Result<Self, ImportError> {
        if !OPSETS.contains(&model.opset) {
            return Err(ImportError::invalid(
                "model",
                format!(
                    "opset {} is not supported (supported: {} to {})",
                    model.opset,
                    OPSETS.start(),
                    OPSETS.end()
                ),
            ));
        }
        rewrite::import(model, name)
    }

    /// The model's name (the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One sample's input shape `[C, H, W]`, when the file fixes it.
    pub fn input_shape(&self) -> Option<Vec<usize>> {
        let dims: Option<Vec<usize>> = self
            .input_dims
            .iter()
            .skip(1)
            .map(|d| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Dynamic(_) => None,
            })
            .collect();
        dims.filter(|d| !d.is_empty())
    }

    /// What loading changed (a dropped softmax, folded BatchNorms...), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Node labels and ONNX op types in graph order.
    pub fn layers(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.label.clone(), n.node.op_type.clone()))
            .collect()
    }
}

impl Module for OnnxNet {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let mut env: HashMap<&str, Val> = HashMap::new();
        env.insert(self.input.as_str(), Val::Node(x));
        record::check_input(tape, x, &self.input_dims)?;
        for g in &self.nodes {
            let inputs: Vec<Option<Val>> = g
                .node
                .inputs
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    env.get(name.as_str())
                        .cloned()
                        .or_else(|| self.consts.get(name).cloned().map(Val::Const))
                        .map(Some)
                        .ok_or_else(|| {
                            relprop_core::Error::invalid(
                                "onnx",
                                format!("node `{}` reads `{name}`, which is not defined", g.label),
                            )
                        })
                })
                .collect::<Result<_>>()?;
            let out = record::node(tape, g, &inputs)?;
            if let Some(name) = g.node.outputs.first() {
                env.insert(name.as_str(), out);
            }
        }
        match env.get(self.output.as_str()) {
            Some(Val::Node(id)) => Ok(*id),
            _ => Err(relprop_core::Error::invalid(
                "onnx",
                format!(
                    "the output `{}` is not computed from the input",
                    self.output
                ),
            )),
        }
    }

    fn params(&self) -> Vec<&Param> {
        self.nodes
            .iter()
            .flat_map(|n| match &n.layer {
                Layer::Conv(c) => std::iter::once(&c.w)
                    .chain(c.b.as_ref())
                    .collect::<Vec<_>>(),
                Layer::Linear(l) => std::iter::once(&l.w).chain(l.b.as_ref()).collect(),
                Layer::Norm(b) => vec![&b.weight, &b.bias],
                Layer::Plain => vec![],
            })
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.nodes
            .iter_mut()
            .flat_map(|n| match &mut n.layer {
                Layer::Conv(c) => std::iter::once(&mut c.w)
                    .chain(c.b.as_mut())
                    .collect::<Vec<_>>(),
                Layer::Linear(l) => std::iter::once(&mut l.w).chain(l.b.as_mut()).collect(),
                Layer::Norm(b) => vec![&mut b.weight, &mut b.bias],
                Layer::Plain => vec![],
            })
            .collect()
    }

    fn describe(&self) -> String {
        let mut out = format!("{}: onnx graph ({} nodes)", self.name, self.nodes.len());
        for n in &self.nodes {
            out.push_str(&format!("\n  {}: {}", n.label, n.node.op_type));
        }
        out
    }
}

#[cfg(test)]
mod tests;
