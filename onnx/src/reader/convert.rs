//! Decoded protobuf messages into the public model types.

use super::external::External;
use super::proto::{
    AttributeProto, DimensionValue, GraphProto, ModelProto, NodeProto, ValueInfoProto,
};
use super::tensor::convert_tensor;
use super::{AttrValue, Attribute, Dim, Graph, Node, OnnxModel, ValueInfo};
use relprop_nn::io::IoError;
use std::collections::HashSet;

/// The whole model: opset, producer and main graph.
pub(crate) fn model(p: ModelProto, external: &mut External) -> Result<OnnxModel, IoError> {
    let opset = default_opset(&p)?;
    let producer = match (p.producer_name.is_empty(), p.producer_version.is_empty()) {
        (false, false) => format!("{} {}", p.producer_name, p.producer_version),
        (false, true) => p.producer_name,
        (true, _) => p.producer_version,
    };
    let graph = p
        .graph
        .ok_or_else(|| IoError::malformed("onnx model", "holds no graph"))?;
    Ok(OnnxModel {
        opset,
        producer,
        graph: graph_of(*graph, external)?,
    })
}

/// The version of the default operator set (`""` or `ai.onnx`), which must be declared
/// exactly once (or repeated with the same version).
fn default_opset(p: &ModelProto) -> Result<i64, IoError> {
    let what = "onnx model opset_import";
    let mut found: Option<i64> = None;
    for o in &p.opset_import {
        if !(o.domain.is_empty() || o.domain == "ai.onnx") {
            continue;
        }
        let v = o
            .version
            .ok_or_else(|| IoError::malformed(what, "the default domain has no version"))?;
        if v < 1 {
            return Err(IoError::malformed(
                what,
                format!("the default domain's version is {v}"),
            ));
        }
        match found {
            Some(prev) if prev != v => {
                return Err(IoError::malformed(
                    what,
                    format!("the default domain is imported twice, as versions {prev} and {v}"),
                ))
            }
            _ => found = Some(v),
        }
    }
    found.ok_or_else(|| {
        IoError::malformed(
            what,
            "no version of the default (ai.onnx) operator set is imported",
        )
    })
}

fn graph_of(g: GraphProto, external: &mut External) -> Result<Graph, IoError> {
    let mut names = HashSet::new();
    let mut initializers = Vec::with_capacity(g.initializer.len());
    for (k, t) in g.initializer.into_iter().enumerate() {
        if t.name.is_empty() {
            return Err(IoError::malformed(
                format!("onnx initializer #{k}"),
                "has no name",
            ));
        }
        let name = t.name.clone();
        let what = format!("onnx initializer `{name}`");
        if !names.insert(name.clone()) {
            return Err(IoError::malformed(what, "the name is used twice"));
        }
        let tensor = convert_tensor(t, &what, external)?;
        initializers.push((name, tensor));
    }
    // Older exporters list every weight as a graph input too; those are not inputs.
    let inputs = g
        .input
        .into_iter()
        .filter(|v| !names.contains(&v.name))
        .map(|v| value_info(v, "input"))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = g
        .output
        .into_iter()
        .map(|v| value_info(v, "output"))
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = g
        .node
        .into_iter()
        .enumerate()
        .map(|(k, n)| node(n, k, external))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Graph {
        name: g.name,
        nodes,
        initializers,
        inputs,
        outputs,
    })
}

/// A graph input or output; `role` is `input` or `output`.
fn value_info(v: ValueInfoProto, role: &str) -> Result<ValueInfo, IoError> {
    let what = || format!("onnx graph {role} `{}`", v.name);
    if v.name.is_empty() {
        return Err(IoError::malformed(what(), "has no name"));
    }
    let shape = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref());
    let mut dims = Vec::new();
    for (k, d) in shape
        .map(|s| s.dim.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        dims.push(match &d.value {
            Some(DimensionValue::DimValue(n)) => Dim::Fixed(usize::try_from(*n).map_err(|_| {
                IoError::malformed(
                    what(),
                    format!("dimension {k} is {n}: sizes cannot be negative"),
                )
            })?),
            Some(DimensionValue::DimParam(p)) => Dim::Dynamic(p.clone()),
            None => Dim::Dynamic(String::new()),
        });
    }
    Ok(ValueInfo { name: v.name, dims })
}

fn node(n: NodeProto, k: usize, external: &mut External) -> Result<Node, IoError> {
    let what = if n.name.is_empty() {
        format!("onnx node #{k} ({})", n.op_type)
    } else {
        format!("onnx node `{}` ({})", n.name, n.op_type)
    };
    if n.op_type.is_empty() {
        return Err(IoError::malformed(what, "has no op_type"));
    }
    let mut seen = HashSet::new();
    let mut attributes = Vec::with_capacity(n.attribute.len());
    for a in n.attribute {
        let part = format!("{what} attribute `{}`", a.name);
        if a.name.is_empty() {
            return Err(IoError::malformed(part, "has no name"));
        }
        if !seen.insert(a.name.clone()) {
            return Err(IoError::malformed(part, "is given twice"));
        }
        let name = a.name.clone();
        let value = attr_value(a, &part, external)?;
        attributes.push(Attribute { name, value });
    }
    Ok(Node {
        name: n.name,
        op_type: n.op_type,
        domain: n.domain,
        inputs: n.input,
        outputs: n.output,
        attributes,
    })
}

/// `AttributeProto.AttributeType` codes.
mod kind {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const GRAPH: i32 = 5;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
    pub const STRINGS: i32 = 8;
    pub const TENSORS: i32 = 9;
    pub const GRAPHS: i32 = 10;
    pub const SPARSE_TENSOR: i32 = 11;
    pub const SPARSE_TENSORS: i32 = 12;
    pub const TYPE_PROTO: i32 = 13;
    pub const TYPE_PROTOS: i32 = 14;
}

/// The attribute's kind: its `type` field, or for files that predate it (IR version 1)
/// the value field that is present.
fn attr_kind(a: &AttributeProto) -> Option<i32> {
    if let Some(t) = a.r#type.filter(|&t| t != 0) {
        return Some(t);
    }
    let present = [
        (a.f.is_some(), kind::FLOAT),
        (a.i.is_some(), kind::INT),
        (a.s.is_some(), kind::STRING),
        (a.t.is_some(), kind::TENSOR),
        (a.g.is_some(), kind::GRAPH),
        (a.sparse_tensor.is_some(), kind::SPARSE_TENSOR),
        (a.tp.is_some(), kind::TYPE_PROTO),
        (!a.floats.is_empty(), kind::FLOATS),
        (!a.ints.is_empty(), kind::INTS),
        (!a.strings.is_empty(), kind::STRINGS),
        (!a.tensors.is_empty(), kind::TENSORS),
        (!a.graphs.is_empty(), kind::GRAPHS),
        (!a.sparse_tensors.is_empty(), kind::SPARSE_TENSORS),
        (!a.type_protos.is_empty(), kind::TYPE_PROTOS),
    ];
    present.iter().find(|(p, _)| *p).map(|&(_, k)| k)
}

fn attr_value(
    a: AttributeProto,
    what: &str,
    external: &mut External,
) -> Result<AttrValue, IoError> {
    // A reference to an attribute of an enclosing function: only meaningful in functions.
    if !a.ref_attr_name.is_empty() {
        return Ok(AttrValue::Other("reference"));
    }
    let Some(k) = attr_kind(&a) else {
        return Err(IoError::malformed(what, "has neither a type nor a value"));
    };
    // Absent scalars take their protobuf default, as proto3 writers omit zeros.
    Ok(match k {
        kind::FLOAT => AttrValue::Float(a.f.unwrap_or(0.0)),
        kind::INT => AttrValue::Int(a.i.unwrap_or(0)),
        kind::STRING => {
            AttrValue::String(String::from_utf8_lossy(&a.s.unwrap_or_default()).into_owned())
        }
        kind::FLOATS => AttrValue::Floats(a.floats),
        kind::INTS => AttrValue::Ints(a.ints),
        kind::TENSOR => {
            let t = a.t.ok_or_else(|| {
                IoError::malformed(what, "is a TENSOR attribute without a tensor")
            })?;
            AttrValue::Tensor(convert_tensor(*t, what, external)?)
        }
        kind::GRAPH => AttrValue::Other("graph"),
        kind::STRINGS => AttrValue::Other("strings"),
        kind::TENSORS => AttrValue::Other("tensors"),
        kind::GRAPHS => AttrValue::Other("graphs"),
        kind::SPARSE_TENSOR => AttrValue::Other("sparse tensor"),
        kind::SPARSE_TENSORS => AttrValue::Other("sparse tensors"),
        kind::TYPE_PROTO => AttrValue::Other("type"),
        kind::TYPE_PROTOS => AttrValue::Other("types"),
        other => {
            return Err(IoError::malformed(
                what,
                format!("attribute type {other} is not defined by ONNX"),
            ))
        }
    })
}
