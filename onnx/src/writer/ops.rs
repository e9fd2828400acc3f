//! One recorded op as one ONNX node (opset 17), with the attributes the importer reads
//! back to the same op: the round trip records the same tape.

use super::build::{ints, Attr, Builder};
use super::error::ExportError;
use relprop_core::{NodeId, Op, Tensor};

/// Writes tape node `id` as an ONNX node whose output is named `out`.
pub(crate) fn emit(b: &mut Builder, id: NodeId, out: String) -> Result<(), ExportError> {
    let node = b
        .tape
        .node(id)
        .map_err(|e| ExportError::Record(e.to_string()))?;
    let what = node.describe();
    let shape = |b: &Builder, x: NodeId| -> Result<Vec<usize>, ExportError> {
        b.tape
            .value(x)
            .map(|t| t.shape().to_vec())
            .map_err(|e| ExportError::Record(e.to_string()))
    };
    let invalid = |why: String| ExportError::invalid(what.clone(), why);
    // The batch axis must stay first and whole, or the file would fix the batch size.
    let keeps_batch = |axis: usize, doing: &str| {
        if axis == 0 {
            Err(invalid(format!(
                "{doing} along the batch axis cannot be written with a dynamic batch"
            )))
        } else {
            Ok(())
        }
    };
    let name = node.label.clone().unwrap_or_default();
    let mut inputs = Vec::new();
    for x in node.op.inputs() {
        inputs.push(b.value(x)?);
    }
    let (op_type, attrs): (&str, Vec<(&str, Attr)>) = match &node.op {
        Op::Add(..) => ("Add", vec![]),
        Op::Sub(..) => ("Sub", vec![]),
        Op::Mul(..) => ("Mul", vec![]),
        Op::Div(..) => ("Div", vec![]),
        Op::Neg(_) => ("Neg", vec![]),
        Op::AddScalar(_, c) | Op::MulScalar(_, c) => {
            let c = b.float_init(&format!("const_{id}"), &Tensor::scalar(*c));
            inputs.push(c);
            let t = if matches!(node.op, Op::AddScalar(..)) {
                "Add"
            } else {
                "Mul"
            };
            (t, vec![])
        }
        Op::Relu(_) => ("Relu", vec![]),
        Op::Tanh(_) => ("Tanh", vec![]),
        Op::Sigmoid(_) => ("Sigmoid", vec![]),
        Op::LeakyRelu(_, slope) => ("LeakyRelu", vec![("alpha", Attr::Float(*slope))]),
        Op::Clamp { min, max, .. } => {
            // An infinite bound is an omitted input (trailing ones are left out).
            let lo = (min.is_finite())
                .then(|| b.float_init(&format!("min_{id}"), &Tensor::scalar(*min)));
            let hi = (max.is_finite())
                .then(|| b.float_init(&format!("max_{id}"), &Tensor::scalar(*max)));
            match (lo, hi) {
                (lo, Some(hi)) => inputs.extend([lo.unwrap_or_default(), hi]),
                (Some(lo), None) => inputs.push(lo),
                (None, None) => {}
            }
            ("Clip", vec![])
        }
        Op::Mean { axes, keepdim, .. } => {
            if axes.contains(&0) {
                keeps_batch(0, "a mean")?;
            }
            (
                "ReduceMean",
                vec![
                    ("axes", ints(axes)),
                    ("keepdims", Attr::Int(i64::from(*keepdim))),
                ],
            )
        }
        Op::Reshape { x, shape: to } => {
            let from = shape(b, *x)?;
            if from.first() != to.first() || to.is_empty() {
                return Err(invalid(format!(
                    "a reshape of {from:?} to {to:?} changes the batch axis, which a file with \
                     a dynamic batch cannot express"
                )));
            }
            // 0 copies the input's batch size, so any batch reshapes the same way.
            let target: Vec<i64> = std::iter::once(0)
                .chain(to[1..].iter().map(|&d| d as i64))
                .collect();
            if to[1..].contains(&0) {
                return Err(invalid(format!("a reshape to {to:?} has an empty axis")));
            }
            inputs.push(b.int_init(&format!("shape_{id}"), &target));
            ("Reshape", vec![])
        }
        Op::Concat { axis, .. } => {
            keeps_batch(*axis, "a concatenation")?;
            ("Concat", vec![("axis", Attr::Int(*axis as i64))])
        }
        Op::Pad { before, after, .. } => {
            if before.first().copied().unwrap_or(0) + after.first().copied().unwrap_or(0) > 0 {
                keeps_batch(0, "padding")?;
            }
            let pads: Vec<i64> = before.iter().chain(after).map(|&p| p as i64).collect();
            inputs.push(b.int_init(&format!("pads_{id}"), &pads));
            ("Pad", vec![])
        }
        Op::Permute { perm, .. } => {
            if perm.first() != Some(&0) {
                keeps_batch(0, "a transpose")?;
            }
            ("Transpose", vec![("perm", ints(perm))])
        }
        Op::Linear { x, .. } => {
            let xs = shape(b, *x)?;
            if xs.len() != 2 {
                return Err(invalid(format!(
                    "a linear layer on a rank-{} input {xs:?} has no Gemm form",
                    xs.len()
                )));
            }
            ("Gemm", vec![("transB", Attr::Int(1))])
        }
        Op::Conv2d { w, spec, .. } => {
            let ws = shape(b, *w)?;
            let [p0, p1] = spec.padding;
            let [e0, e1] = spec.padding_end;
            (
                "Conv",
                vec![
                    ("kernel_shape", ints(ws.get(2..).unwrap_or(&[]))),
                    ("strides", ints(&spec.stride)),
                    ("pads", ints(&[p0, p1, e0, e1])),
                    ("dilations", ints(&spec.dilation)),
                    ("group", Attr::Int(spec.groups as i64)),
                ],
            )
        }
        Op::MaxPool2d { spec, .. } | Op::AvgPool2d { spec, .. } => {
            let [p0, p1] = spec.padding;
            let mut attrs = vec![
                ("kernel_shape", ints(&spec.kernel)),
                ("strides", ints(&spec.stride)),
                ("pads", ints(&[p0, p1, p0, p1])),
            ];
            if matches!(node.op, Op::MaxPool2d { .. }) {
                ("MaxPool", attrs)
            } else {
                // relprop's average always divides by the window size, padding included.
                attrs.push(("count_include_pad", Attr::Int(1)));
                ("AveragePool", attrs)
            }
        }
        Op::BatchNorm2d { weight, stats, .. } => {
            if stats.from_batch {
                return Err(invalid(
                    "BatchNorm recorded in training mode (batch statistics)".into(),
                ));
            }
            // The statistics are no tape values: name them as the state_dict does.
            let wname = b.value(*weight)?;
            let prefix = wname
                .strip_suffix(".weight")
                .map_or_else(|| format!("bn_{id}"), str::to_string);
            let mean = b.float_init(&format!("{prefix}.running_mean"), &stats.mean);
            let var = b.float_init(&format!("{prefix}.running_var"), &stats.var);
            inputs.extend([mean, var]);
            (
                "BatchNormalization",
                vec![("epsilon", Attr::Float(stats.eps))],
            )
        }
        Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } => {
            keeps_batch(*axis, "a softmax")?;
            let t = if matches!(node.op, Op::Softmax { .. }) {
                "Softmax"
            } else {
                "LogSoftmax"
            };
            (t, vec![("axis", Attr::Int(*axis as i64))])
        }
        Op::Leaf { .. } => {
            return Err(invalid("a leaf is not an operation".into()));
        }
        Op::Exp(_)
        | Op::Ln(_)
        | Op::Sum { .. }
        | Op::Where { .. }
        | Op::MatMul(..)
        | Op::Custom { .. } => {
            return Err(ExportError::Unsupported {
                op: node.op.name().to_string(),
                node: what,
            })
        }
    };
    b.push(op_type, name, inputs, out, attrs);
    Ok(())
}
