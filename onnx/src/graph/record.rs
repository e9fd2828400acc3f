//! Recording one imported node onto the tape (or folding it, when its inputs are known).

use super::attrs::Attrs;
use super::error::ImportError;
use super::layer::{ConvLayer, ConvPads, Layer};
use super::value::{Const, Val};
use super::{fold, shapes, GraphNode};
use crate::reader::Dim;
use relprop_core::{Conv2dSpec, Error, NodeId, NormStats, Pool2dSpec, Result, Tape};

fn import_err(e: ImportError) -> Error {
    Error::invalid("onnx", e.to_string())
}

/// Checks the recorded input against the shape the file declares (any batch size).
pub(super) fn check_input(tape: &Tape, x: NodeId, dims: &[Dim]) -> Result<()> {
    let shape = tape.value(x)?.shape();
    let fits = dims.is_empty()
        || (shape.len() == dims.len()
            && dims.iter().zip(shape).skip(1).all(|(d, &s)| match d {
                Dim::Fixed(n) => *n == s,
                Dim::Dynamic(_) => true,
            }));
    if fits {
        return Ok(());
    }
    let want: Vec<String> = dims
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Fixed(n) if i > 0 => n.to_string(),
            Dim::Fixed(_) => "N".into(),
            Dim::Dynamic(s) if s.is_empty() => "?".into(),
            Dim::Dynamic(s) => s.clone(),
        })
        .collect();
    Err(Error::shape(
        "onnx input",
        &[shape],
        format!("the model expects an input of shape [{}]", want.join(", ")),
    ))
}

/// The node id of a value, recording a constant on the tape when it is one.
fn on_tape(tape: &mut Tape, v: &Val) -> NodeId {
    match v {
        Val::Node(id) => *id,
        Val::Const(c) => tape.constant(c.to_tensor()),
    }
}

/// Records (or folds) node `g` on inputs `inputs` (`None` for omitted optional inputs).
pub(super) fn node(tape: &mut Tape, g: &GraphNode, inputs: &[Option<Val>]) -> Result<Val> {
    let op = g.node.op_type.as_str();
    let label = g.label.as_str();
    let consts: Option<Vec<Option<Const>>> = inputs
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(Val::Const(c)) => Some(Some(c.clone())),
            Some(Val::Node(_)) => None,
        })
        .collect();
    if let Some(consts) = consts.filter(|_| fold::FOLDABLE.contains(&op)) {
        return fold::eval(&g.node, label, &consts)
            .map(Val::Const)
            .map_err(import_err);
    }
    let x = match inputs.first() {
        Some(Some(v)) => v.clone(),
        _ => {
            return Err(import_err(ImportError::invalid(
                label,
                "the first input is missing",
            )))
        }
    };
    let a = Attrs::new(&g.node, label);
    let ints = |k: usize| -> Option<Vec<i64>> {
        match inputs.get(k) {
            Some(Some(Val::Const(c))) => Some(c.to_ints()),
            _ => None,
        }
    };
    let bad = |why: String| import_err(ImportError::invalid(label, why));
    match op {
        "Shape" => {
            let id = on_tape(tape, &x);
            let dims = tape.value(id)?.shape().to_vec();
            return fold::shape_of(&dims, &a)
                .map(Val::Const)
                .map_err(import_err);
        }
        "Identity" | "Dropout" => return Ok(x),
        _ => {}
    }
    let xi = on_tape(tape, &x);
    let xs = tape.value(xi)?.shape().to_vec();
    let id = match (op, &g.layer) {
        ("Conv", Layer::Conv(c)) => {
            let spec = conv_spec(c, &xs).map_err(bad)?;
            let w = c.w.record(tape);
            let b = c.b.as_ref().map(|b| b.record(tape));
            tape.conv2d(xi, w, b, spec)?
        }
        (_, Layer::Linear(l)) => {
            let xi = if l.trans_a {
                tape.record(relprop_core::Op::Permute {
                    x: xi,
                    perm: vec![1, 0],
                })?
            } else {
                xi
            };
            let w = l.w.record(tape);
            let b = l.b.as_ref().map(|b| b.record(tape));
            tape.linear(xi, w, b)?
        }
        (_, Layer::Norm(n)) => {
            let (w, b) = (n.weight.record(tape), n.bias.record(tape));
            let stats = NormStats {
                mean: n.mean.clone(),
                var: n.var.clone(),
                eps: n.eps,
                from_batch: false,
            };
            tape.batch_norm2d(xi, w, b, stats)?
        }
        ("Relu", _) => tape.relu(xi)?,
        ("LeakyRelu", _) => tape.leaky_relu(xi, a.float("alpha", 0.01).map_err(import_err)?)?,
        ("Clip", _) => {
            let bound = |k: usize, attr: &str, default: f32| -> Result<f32> {
                match inputs.get(k) {
                    Some(Some(Val::Const(c))) => c
                        .to_tensor()
                        .data()
                        .first()
                        .copied()
                        .ok_or_else(|| bad("an empty Clip bound".into())),
                    Some(Some(Val::Node(_))) => Err(bad("Clip bounds must be constants".into())),
                    _ => a.float(attr, default).map_err(import_err),
                }
            };
            let (lo, hi) = (
                bound(1, "min", f32::NEG_INFINITY)?,
                bound(2, "max", f32::INFINITY)?,
            );
            tape.clamp(xi, lo, hi)?
        }
        ("Sigmoid", _) => tape.record(relprop_core::Op::Sigmoid(xi))?,
        ("Tanh", _) => tape.record(relprop_core::Op::Tanh(xi))?,
        ("Neg", _) => tape.record(relprop_core::Op::Neg(xi))?,
        ("MaxPool" | "AveragePool", _) => {
            let spec = pool_spec(&a, op == "AveragePool", &xs).map_err(bad)?;
            if op == "MaxPool" {
                tape.max_pool2d(xi, spec)?
            } else {
                tape.avg_pool2d(xi, spec)?
            }
        }
        ("GlobalAveragePool", _) => {
            global_pool(tape, xi, &xs, true).map_err(|e| bad(e.to_string()))?
        }
        ("ReduceMean", _) => {
            let rank = xs.len();
            let axes = match ints(1)
                .map(Some)
                .unwrap_or(a.ints("axes").map_err(import_err)?)
            {
                Some(v) => v
                    .iter()
                    .map(|&k| shapes::axis(label, k, rank))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(import_err)?,
                None => (0..rank).collect(),
            };
            let keep = a.int("keepdims", 1).map_err(import_err)? != 0;
            let mut sorted = axes.clone();
            sorted.sort_unstable();
            if rank == 4 && sorted == [2, 3] {
                global_pool(tape, xi, &xs, keep)?
            } else {
                tape.mean(xi, &sorted, keep)?
            }
        }
        ("Add" | "Sub" | "Mul" | "Div", _) => {
            let y = match inputs.get(1) {
                Some(Some(v)) => on_tape(tape, v),
                _ => return Err(bad(format!("{op} needs two inputs"))),
            };
            match op {
                "Add" => tape.add(xi, y)?,
                "Sub" => tape.sub(xi, y)?,
                "Mul" => tape.mul(xi, y)?,
                _ => tape.div(xi, y)?,
            }
        }
        ("Concat", _) => {
            let ids: Vec<NodeId> = inputs.iter().flatten().map(|v| on_tape(tape, v)).collect();
            let ax = shapes::axis(label, a.int("axis", 0).map_err(import_err)?, xs.len())
                .map_err(import_err)?;
            tape.concat(&ids, ax)?
        }
        ("Flatten" | "Reshape" | "Squeeze" | "Unsqueeze", _) => {
            let axes = || -> Result<Option<Vec<i64>>> {
                Ok(ints(1).or(a.ints("axes").map_err(import_err)?))
            };
            let dims = match op {
                "Flatten" => shapes::flatten(label, &xs, a.int("axis", 1).map_err(import_err)?),
                "Reshape" => {
                    let target = ints(1).ok_or_else(|| {
                        bad("the target shape must be a constant (or computed from shapes)".into())
                    })?;
                    shapes::reshape_target(
                        label,
                        &xs,
                        &target,
                        a.int("allowzero", 0).map_err(import_err)? != 0,
                    )
                }
                "Squeeze" => shapes::squeeze(label, &xs, axes()?.as_deref()),
                _ => shapes::unsqueeze(
                    label,
                    &xs,
                    &axes()?.ok_or_else(|| bad("Unsqueeze without axes".into()))?,
                ),
            }
            .map_err(import_err)?;
            tape.reshape(xi, &dims)?
        }
        ("Transpose", _) => {
            let perm = shapes::permutation(
                label,
                xs.len(),
                a.ints("perm").map_err(import_err)?.as_deref(),
            )
            .map_err(import_err)?;
            tape.record(relprop_core::Op::Permute { x: xi, perm })?
        }
        ("Pad", _) => {
            let (before, after) = pads(&a, inputs, &xs).map_err(bad)?;
            tape.pad(xi, &before, &after)?
        }
        ("Softmax" | "LogSoftmax", _) => {
            let ax = shapes::axis(label, a.int("axis", -1).map_err(import_err)?, xs.len())
                .map_err(import_err)?;
            if op == "Softmax" {
                tape.softmax(xi, ax)?
            } else {
                tape.log_softmax(xi, ax)?
            }
        }
        _ => {
            return Err(bad(format!(
                "{op} of a computed value is not supported (only of constants, folded at load)"
            )));
        }
    };
    tape.set_label(id, label)?;
    Ok(Val::Node(id))
}

/// Average over the whole plane (`GlobalAveragePool`, `ReduceMean` over H and W): one
/// average-pooling node, so the Norm rule applies, then a reshape unless dims are kept.
fn global_pool(tape: &mut Tape, x: NodeId, xs: &[usize], keep: bool) -> Result<NodeId> {
    let &[n, c, h, w] = xs else {
        return Err(Error::shape(
            "onnx global pooling",
            &[xs],
            "the input must be [N, C, H, W]",
        ));
    };
    let spec = Pool2dSpec {
        kernel: [h, w],
        stride: [h.max(1), w.max(1)],
        padding: [0, 0],
    };
    let pooled = tape.avg_pool2d(x, spec)?;
    if keep {
        Ok(pooled)
    } else {
        let id = tape.reshape(pooled, &[n, c])?;
        Ok(id)
    }
}

/// The convolution's spec for an input of shape `xs` (`SAME` padding depends on it).
fn conv_spec(c: &ConvLayer, xs: &[usize]) -> std::result::Result<Conv2dSpec, String> {
    let k = &c.w.value.shape()[2..];
    let [t, l, b, r] = match c.pads {
        ConvPads::Explicit(p) => p,
        ConvPads::Same { upper } => {
            let &[_, _, h, w] = xs else {
                return Err(format!("the input {xs:?} must be [N, C, H, W]"));
            };
            let mut p = [0; 4];
            for (axis, size) in [h, w].into_iter().enumerate() {
                let out = size.div_ceil(c.stride[axis]);
                let span = (k[axis] - 1) * c.dilation[axis] + 1;
                let total = ((out - 1) * c.stride[axis] + span).saturating_sub(size);
                let small = total / 2;
                let (before, after) = if upper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                p[axis] = before;
                p[axis + 2] = after;
            }
            p
        }
    };
    Ok(Conv2dSpec::new(1, 0)
        .with_stride(c.stride)
        .with_pads([t, l], [b, r])
        .with_dilation(c.dilation)
        .with_groups(c.groups))
}

/// A pooling node's spec; what the kernels cannot do exactly is refused.
fn pool_spec(a: &Attrs, average: bool, xs: &[usize]) -> std::result::Result<Pool2dSpec, String> {
    let e = |e: ImportError| e.to_string();
    let kernel = a.sizes("kernel_shape", 2, 0).map_err(e)?;
    let stride = a.sizes("strides", 2, 1).map_err(e)?;
    let pads = a.sizes("pads", 4, 0).map_err(e)?;
    if a.sizes("dilations", 2, 1).map_err(e)? != [1, 1] {
        return Err("dilated pooling is not supported".into());
    }
    if !matches!(
        a.string("auto_pad", "NOTSET").map_err(e)?.as_str(),
        "NOTSET" | "VALID"
    ) {
        return Err("SAME auto_pad in pooling is not supported".into());
    }
    if pads[0] != pads[2] || pads[1] != pads[3] {
        return Err(format!(
            "asymmetric pooling pads {pads:?} are not supported"
        ));
    }
    if average && pads.iter().any(|&p| p > 0) && a.int("count_include_pad", 0).map_err(e)? == 0 {
        return Err(
            "average pooling that excludes the padding from the count is not supported".into(),
        );
    }
    let spec = Pool2dSpec {
        kernel: [kernel[0], kernel[1]],
        stride: [stride[0], stride[1]],
        padding: [pads[0], pads[1]],
    };
    if a.int("ceil_mode", 0).map_err(e)? != 0 {
        // Ceiling mode only matters when a last, partial window would be added.
        let &[_, _, h, w] = xs else {
            return Err("the input must be [N, C, H, W]".into());
        };
        for (axis, size) in [h, w].into_iter().enumerate() {
            let span = size + 2 * spec.padding[axis];
            let k = spec.kernel[axis];
            if span >= k && !(span - k).is_multiple_of(spec.stride[axis]) {
                return Err("ceil_mode pooling with a partial last window is not supported".into());
            }
        }
    }
    Ok(spec)
}

/// A `Pad` node's zeros before and after each axis (constant mode, value 0 only).
fn pads(
    a: &Attrs,
    inputs: &[Option<Val>],
    xs: &[usize],
) -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
    let e = |e: ImportError| e.to_string();
    if a.string("mode", "constant").map_err(e)? != "constant" {
        return Err("only constant padding is supported".into());
    }
    let konst = |k: usize| match inputs.get(k) {
        Some(Some(Val::Const(c))) => Ok(Some(c.clone())),
        Some(Some(Val::Node(_))) => Err(format!("Pad input {k} must be a constant")),
        _ => Ok(None),
    };
    if let Some(v) = konst(2)? {
        if v.to_tensor().data().iter().any(|&x| x != 0.0) {
            return Err("only zero padding is supported".into());
        }
    }
    let list = match konst(1)? {
        Some(c) => c.to_ints(),
        None => a.ints("pads").map_err(e)?.ok_or("Pad without pads")?,
    };
    let rank = xs.len();
    let axes: Vec<usize> = match konst(3)? {
        Some(c) => c
            .to_ints()
            .iter()
            .map(|&k| shapes::axis("pad", k, rank).map_err(e))
            .collect::<std::result::Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if list.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", list.len(), axes.len()));
    }
    let (mut before, mut after) = (vec![0; rank], vec![0; rank]);
    for (k, &ax) in axes.iter().enumerate() {
        let (b, f) = (list[k], list[k + axes.len()]);
        if b < 0 || f < 0 {
            return Err("negative pads (cropping) are not supported".into());
        }
        before[ax] = b as usize;
        after[ax] = f as usize;
    }
    Ok((before, after))
}
