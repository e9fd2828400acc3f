//! Writing relprop models as `.onnx` files that relprop and ONNX runtimes read back.
//!
//! The model is recorded once on a dummy input, and every recorded op on the path from
//! the input to the output becomes one ONNX node (opset [`OPSET`]): a linear layer a
//! `Gemm`, a convolution a `Conv` with its padding, stride, dilation and groups, BatchNorm
//! a `BatchNormalization` with its running statistics, and so on. Parameters become
//! initializers under their `state_dict` names and each node is named by its tape label,
//! so a re-imported model records the same layers under the same labels, and composites
//! give it the same rules. The input is `input` and the output `logits`, both with a
//! symbolic batch size. An op ONNX (or the importer) cannot express is an error naming it.

mod build;
mod error;
mod ops;

#[cfg(test)]
mod tests;

pub use error::ExportError;

use crate::reader::proto::{GraphProto, ModelProto, OperatorSetIdProto};
use crate::reader::MAX_MODEL_BYTES;
use build::{value_info, Builder};
use prost::Message;
use relprop_core::{NodeId, Op, Tape, Tensor};
use relprop_nn::io::write_atomic;
use relprop_nn::{Mode, Module};
use std::path::Path;

/// The operator set written (within the importer's supported range).
pub const OPSET: i64 = 17;

/// The ONNX IR version written (the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;

/// The name of the graph's input.
pub const INPUT_NAME: &str = "input";

/// The name of the graph's output.
pub const OUTPUT_NAME: &str = "logits";

/// Samples in the dummy recording: more than one, so a reshape that mixes samples shows
/// up as a changed batch axis instead of passing unnoticed.
const DUMMY_BATCH: usize = 2;

/// The largest dummy input recorded, in elements (a sample of 64 Mi values).
const MAX_DUMMY_ELEMENTS: usize = 1 << 27;

/// Encodes `model` as an `.onnx` file. `input_shape` is one sample's shape (`[C, H, W]`);
/// the file's input is `[batch, ...input_shape]` with a symbolic `batch`. `name` names the
/// graph.
pub fn export_module(
    model: &dyn Module,
    input_shape: &[usize],
    name: &str,
) -> Result<Vec<u8>, ExportError> {
    if input_shape.is_empty() || input_shape.contains(&0) {
        return Err(ExportError::Record(format!(
            "the input shape {input_shape:?} must have at least one axis, none empty"
        )));
    }
    let mut dims = vec![DUMMY_BATCH];
    dims.extend_from_slice(input_shape);
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_DUMMY_ELEMENTS)
        .ok_or_else(|| {
            ExportError::Record(format!(
                "the input shape {input_shape:?} is too large (at most {} values per sample)",
                MAX_DUMMY_ELEMENTS / DUMMY_BATCH
            ))
        })?;
    let mut tape = Tape::for_inference();
    let x = tape.leaf(Tensor::zeros(&dims));
    tape.set_label(x, INPUT_NAME)
        .map_err(|e| ExportError::Record(e.to_string()))?;
    let y = model.forward(&mut tape, x, Mode::Eval).map_err(|e| {
        ExportError::Record(format!(
            "the model fails on an input of shape [N, {}]: {e}",
            join(input_shape)
        ))
    })?;
    export_tape(&tape, x, y, name)
}

/// Encodes a recorded pass from leaf `input` to node `output` as an `.onnx` file. The
/// first axis of the input and the output is written as the symbolic batch.
pub fn export_tape(
    tape: &Tape,
    input: NodeId,
    output: NodeId,
    name: &str,
) -> Result<Vec<u8>, ExportError> {
    let record = |e: relprop_core::Error| ExportError::Record(e.to_string());
    if !matches!(tape.node(input).map_err(record)?.op, Op::Leaf { .. }) {
        return Err(ExportError::Record(format!(
            "the input (node {input}) must be a leaf of the tape"
        )));
    }
    let in_shape = tape.value(input).map_err(record)?.shape().to_vec();
    let out_shape = tape.value(output).map_err(record)?.shape().to_vec();
    if in_shape.is_empty() || out_shape.first() != in_shape.first() {
        return Err(ExportError::Record(format!(
            "the output {out_shape:?} must keep the input's batch axis ({in_shape:?})"
        )));
    }
    // Only what the output depends on is written.
    let mut needed = vec![false; tape.len()];
    needed[output] = true;
    for id in (0..=output).rev() {
        if needed[id] {
            for i in tape.node(id).map_err(record)?.op.inputs() {
                needed[i] = true;
            }
        }
    }
    if !needed[input] {
        return Err(ExportError::Record(
            "the output does not depend on the input".into(),
        ));
    }
    let mut b = Builder::new(tape, input, INPUT_NAME, &[OUTPUT_NAME]);
    // Parameters first, so they keep their state_dict names whatever the layer labels.
    for (id, node) in tape.nodes().iter().enumerate().take(output + 1) {
        if needed[id] && id != input && matches!(node.op, Op::Leaf { .. }) {
            b.value(id)?;
        }
    }
    for (id, node) in tape.nodes().iter().enumerate().take(output + 1) {
        if !needed[id] || matches!(node.op, Op::Leaf { .. }) {
            continue;
        }
        let out = if id == output {
            OUTPUT_NAME.to_string()
        } else {
            match &node.label {
                Some(l) => b.fresh(l),
                None => b.anonymous(node.op.name()),
            }
        };
        ops::emit(&mut b, id, out.clone())?;
        b.set_name(id, out);
    }
    if output == input {
        b.push(
            "Identity",
            String::new(),
            vec![INPUT_NAME.into()],
            OUTPUT_NAME.into(),
            vec![],
        );
    }
    let batched = |s: &[usize]| -> Vec<Option<usize>> {
        std::iter::once(None)
            .chain(s[1..].iter().map(|&d| Some(d)))
            .collect()
    };
    let graph = GraphProto {
        node: b.nodes,
        name: name.to_string(),
        initializer: b.initializers,
        input: vec![value_info(INPUT_NAME, &batched(&in_shape))],
        output: vec![value_info(OUTPUT_NAME, &batched(&out_shape))],
        value_info: vec![],
    };
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "relprop".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(Box::new(graph)),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: Some(OPSET),
        }],
    };
    let len = model.encoded_len();
    if len as u64 > MAX_MODEL_BYTES {
        return Err(ExportError::Record(format!(
            "the model takes {len} bytes, more than a protobuf file can hold ({MAX_MODEL_BYTES})"
        )));
    }
    Ok(model.encode_to_vec())
}

/// Writes `model` to `path` as an `.onnx` file (see [`export_module`]), atomically: on
/// failure `path` is left as it was.
pub fn write_model(
    path: &Path,
    model: &dyn Module,
    input_shape: &[usize],
    name: &str,
) -> Result<(), ExportError> {
    let bytes = export_module(model, input_shape, name)?;
    write_atomic(path, &bytes)?;
    Ok(())
}

fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
