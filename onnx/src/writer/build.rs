//! The graph under construction: unique value names, initializers and nodes, plus the
//! protobuf pieces (attributes, tensors, value types) they are made of.

use super::error::ExportError;
use crate::reader::proto::{
    AttributeProto, Dimension, DimensionValue, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto,
};
use relprop_core::{NodeId, Op, Tape, Tensor};
use std::collections::{HashMap, HashSet};

/// `TensorProto.DataType.FLOAT`.
pub(crate) const FLOAT: i32 = 1;
/// `TensorProto.DataType.INT64`.
pub(crate) const INT64: i32 = 7;

/// `AttributeProto.AttributeType` values used here.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_INTS: i32 = 7;

/// An attribute of a node being written.
pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
}

/// Nodes and initializers of the graph being written, and the name of every tape value.
pub(crate) struct Builder<'t> {
    pub tape: &'t Tape,
    /// The value name of each tape node once it has one.
    names: HashMap<NodeId, String>,
    /// Every value name in use (initializers are values: one namespace in ONNX).
    taken: HashSet<String>,
    /// Initializer names by parameter label, with the value they hold (a parameter
    /// recorded twice is written once).
    by_label: HashMap<String, (NodeId, String)>,
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    anonymous: usize,
}

impl<'t> Builder<'t> {
    /// A builder whose graph input is node `input`, named `input_name`; `reserved` names
    /// (the output) are never given to anything else.
    pub fn new(tape: &'t Tape, input: NodeId, input_name: &str, reserved: &[&str]) -> Self {
        let mut b = Builder {
            tape,
            names: HashMap::new(),
            taken: reserved.iter().map(|s| s.to_string()).collect(),
            by_label: HashMap::new(),
            nodes: vec![],
            initializers: vec![],
            anonymous: 0,
        };
        b.taken.insert(input_name.to_string());
        b.names.insert(input, input_name.to_string());
        b
    }

    /// `base` if unused, else `base_2`, `base_3`...
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.taken.insert(name.clone());
        name
    }

    /// Sets the value name of a recorded node.
    pub fn set_name(&mut self, id: NodeId, name: String) {
        self.names.insert(id, name);
    }

    /// The value name of tape node `id`: a recorded op's output, or a leaf written as an
    /// initializer under its label (a parameter's `state_dict` name) on first use.
    pub fn value(&mut self, id: NodeId) -> Result<String, ExportError> {
        if let Some(n) = self.names.get(&id) {
            return Ok(n.clone());
        }
        let node = self
            .tape
            .node(id)
            .map_err(|e| ExportError::Record(e.to_string()))?;
        if !matches!(node.op, Op::Leaf { .. }) {
            return Err(ExportError::invalid(
                node.describe(),
                "read before it is written (the tape is not in creation order)",
            ));
        }
        let name = match &node.label {
            Some(label) => match self.by_label.get(label) {
                Some((other, name)) if self.tape.value(*other).ok() == Some(&node.value) => {
                    name.clone()
                }
                _ => {
                    let name = self.fresh(label);
                    self.by_label.insert(label.clone(), (id, name.clone()));
                    self.initializers.push(float_tensor(&name, &node.value));
                    name
                }
            },
            None => {
                let name = self.fresh(&format!("const_{id}"));
                self.initializers.push(float_tensor(&name, &node.value));
                name
            }
        };
        self.names.insert(id, name.clone());
        Ok(name)
    }

    /// A new float initializer (BatchNorm statistics, scalar operands).
    pub fn float_init(&mut self, base: &str, t: &Tensor) -> String {
        let name = self.fresh(base);
        self.initializers.push(float_tensor(&name, t));
        name
    }

    /// A new int64 initializer (shapes, pads).
    pub fn int_init(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.fresh(base);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: INT64,
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    /// A name for an unlabelled node's output.
    pub fn anonymous(&mut self, op: &str) -> String {
        self.anonymous += 1;
        let base = format!("{op}_{}", self.anonymous);
        self.fresh(&base)
    }

    /// Appends a node.
    pub fn push(
        &mut self,
        op_type: &str,
        name: String,
        inputs: Vec<String>,
        output: String,
        attrs: Vec<(&str, Attr)>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output],
            name,
            op_type: op_type.to_string(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            domain: String::new(),
        });
    }
}

fn attribute(name: &str, a: Attr) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match a {
        Attr::Int(v) => {
            p.i = Some(v);
            p.r#type = Some(ATTR_INT);
        }
        Attr::Float(v) => {
            p.f = Some(v);
            p.r#type = Some(ATTR_FLOAT);
        }
        Attr::Ints(v) => {
            p.ints = v;
            p.r#type = Some(ATTR_INTS);
        }
    }
    p
}

/// A float32 tensor, its elements as little-endian `raw_data`.
pub(crate) fn float_tensor(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        raw_data: Some(t.data().iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A float tensor value's name and shape; `None` dimensions are the symbolic `batch`.
pub(crate) fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DimensionValue::DimValue(*n as i64),
                None => DimensionValue::DimParam("batch".to_string()),
            }),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// Sizes as ONNX `INTS`.
pub(crate) fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}
