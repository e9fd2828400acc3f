//! Tests of the reader: real exports, hand-built models, hostile and damaged files.
//!
//! Hand-built models are encoded with the reader's own prost messages; their expected
//! values are written down directly (or follow from IEEE 754), not taken from the reader.

mod external;
mod fixtures;
mod hostile;
mod tensors;

use super::proto::*;
use super::*;
use prost::Message;
use std::path::PathBuf;

/// A fresh empty folder for one test.
pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relprop-onnx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tensor with the given dims and type and no data yet.
pub(super) fn tensor(name: &str, dims: &[i64], data_type: i32) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type,
        ..Default::default()
    }
}

/// A model importing opset 17 whose graph holds `initializers` and one `Identity` node
/// reading the first of them, with input `x` ([batch, 3]) and output `y`.
pub(super) fn model_with(initializers: Vec<TensorProto>) -> ModelProto {
    let first = initializers
        .first()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let dims = vec![
        Dimension {
            value: Some(DimensionValue::DimParam("batch".into())),
            denotation: String::new(),
        },
        Dimension {
            value: Some(DimensionValue::DimValue(3)),
            denotation: String::new(),
        },
    ];
    let info = |name: &str, dim: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    };
    // Old exporters also list initializers as inputs: the reader must drop them.
    let mut input = vec![info("x", dims)];
    input.extend(initializers.iter().map(|t| info(&t.name, vec![])));
    ModelProto {
        ir_version: 8,
        producer_name: "hand".into(),
        producer_version: "1".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: Some(17),
        }],
        graph: Some(Box::new(GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                input: vec![first],
                output: vec!["y".into()],
                name: "id".into(),
                op_type: "Identity".into(),
                ..Default::default()
            }],
            initializer: initializers,
            input,
            output: vec![info("y", vec![])],
            value_info: vec![],
        })),
    }
}

/// Decodes `model` without a folder.
pub(super) fn decode(model: &ModelProto) -> Result<OnnxModel, IoError> {
    decode_model(&model.encode_to_vec(), None)
}

/// The single initializer of a model built by [`model_with`].
pub(super) fn only_tensor(t: TensorProto) -> Result<ConstTensor, IoError> {
    decode(&model_with(vec![t])).map(|m| m.graph.initializers[0].1.clone())
}
