//! Constant folding: ops whose inputs are all known are evaluated, never recorded.
//!
//! Exporters compute shapes in the graph (`Shape -> Gather -> Unsqueeze -> Concat ->
//! Reshape`) and write constants as nodes; these are folded at load time, or at run time
//! when they read the input's shape (a dynamic batch).

use super::attrs::Attrs;
use super::error::ImportError;
use super::shapes;
use super::value::Const;
use crate::reader::{AttrValue, Node};
use relprop_core::Tensor;

/// The ops that are folded when every input is constant.
pub(crate) const FOLDABLE: [&str; 17] = [
    "Constant",
    "Identity",
    "Dropout",
    "Cast",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
];

fn tensor_err(node: &str) -> impl Fn(relprop_core::Error) -> ImportError + '_ {
    move |e| ImportError::invalid(node, e.to_string())
}

/// The value of a `Constant` node.
pub(crate) fn constant(node: &Node, label: &str) -> Result<Const, ImportError> {
    let attr = node
        .attributes
        .first()
        .ok_or_else(|| ImportError::invalid(label, "a Constant without a value"))?;
    Ok(match &attr.value {
        AttrValue::Tensor(t) => Const::from_tensor(t, label)?,
        AttrValue::Float(v) => Const::F(Tensor::scalar(*v)),
        AttrValue::Floats(v) => {
            Const::F(Tensor::from_vec(v.clone(), &[v.len()]).map_err(tensor_err(label))?)
        }
        AttrValue::Int(v) => Const::I(vec![*v], vec![]),
        AttrValue::Ints(v) => Const::I(v.clone(), vec![v.len()]),
        _ => {
            return Err(ImportError::invalid(
                label,
                format!("Constant attribute `{}` is not supported", attr.name),
            ))
        }
    })
}

/// The shape of a value as an `INT64` vector (`Shape`, with its `start`/`end` attributes).
pub(crate) fn shape_of(dims: &[usize], a: &Attrs) -> Result<Const, ImportError> {
    let rank = dims.len() as i64;
    let clip = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clip(a.int("start", 0)?);
    let end = clip(a.int("end", rank)?);
    let v: Vec<i64> = dims[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    let n = v.len();
    Ok(Const::I(v, vec![n]))
}

/// Integer elementwise arithmetic with scalar broadcasting (shape computations).
fn int_binary(label: &str, op: &str, a: &Const, b: &Const) -> Result<Const, ImportError> {
    let (x, y) = (a.to_ints(), b.to_ints());
    let dims = if x.len() >= y.len() {
        a.dims()
    } else {
        b.dims()
    };
    let n = x.len().max(y.len());
    if !(x.len() == y.len() || x.len() == 1 || y.len() == 1) {
        return Err(ImportError::invalid(
            label,
            "integer operands of different sizes",
        ));
    }
    let at = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let out: Option<Vec<i64>> = (0..n)
        .map(|i| {
            let (p, q) = (at(&x, i), at(&y, i));
            match op {
                "Add" => p.checked_add(q),
                "Sub" => p.checked_sub(q),
                "Mul" => p.checked_mul(q),
                _ => p.checked_div(q),
            }
        })
        .collect();
    let out =
        out.ok_or_else(|| ImportError::invalid(label, "integer overflow or division by zero"))?;
    Ok(Const::I(out, dims.to_vec()))
}

/// Evaluates `node` on constant inputs (`None` where an optional input is omitted).
pub(crate) fn eval(
    node: &Node,
    label: &str,
    inputs: &[Option<Const>],
) -> Result<Const, ImportError> {
    let a = Attrs::new(node, label);
    let arg = |i: usize| -> Result<&Const, ImportError> {
        inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| ImportError::invalid(label, format!("{} needs input {i}", node.op_type)))
    };
    let err = tensor_err(label);
    Ok(match node.op_type.as_str() {
        "Constant" => constant(node, label)?,
        "Identity" | "Dropout" => arg(0)?.clone(),
        "Cast" => {
            // FLOAT, DOUBLE, FLOAT16, BFLOAT16 are floats; everything else is kept as integers.
            let to = a.int("to", 1)?;
            match (to, arg(0)?) {
                (1 | 10 | 11 | 16, c) => Const::F(c.to_tensor()),
                (_, c) => Const::I(c.to_ints(), c.dims().to_vec()),
            }
        }
        "Shape" => shape_of(arg(0)?.dims(), &a)?,
        "Gather" => gather(label, arg(0)?, arg(1)?, a.int("axis", 0)?)?,
        "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => {
            let x = arg(0)?;
            let axes_in = || -> Result<Option<Vec<i64>>, ImportError> {
                match inputs.get(1).and_then(Option::as_ref) {
                    Some(c) => Ok(Some(c.to_ints())),
                    None => a.ints("axes"),
                }
            };
            let dims = match node.op_type.as_str() {
                "Unsqueeze" => {
                    let axes = axes_in()?
                        .ok_or_else(|| ImportError::invalid(label, "Unsqueeze without axes"))?;
                    shapes::unsqueeze(label, x.dims(), &axes)?
                }
                "Squeeze" => shapes::squeeze(label, x.dims(), axes_in()?.as_deref())?,
                "Reshape" => shapes::reshape_target(
                    label,
                    x.dims(),
                    &arg(1)?.to_ints(),
                    a.int("allowzero", 0)? != 0,
                )?,
                _ => shapes::flatten(label, x.dims(), a.int("axis", 1)?)?,
            };
            x.with_dims(&dims)
        }
        "Transpose" => {
            let x = arg(0)?;
            let perm = shapes::permutation(label, x.dims().len(), a.ints("perm")?.as_deref())?;
            match x {
                Const::F(t) => Const::F(t.permute(&perm).map_err(&err)?),
                Const::I(..) => {
                    let t = x.to_tensor().permute(&perm).map_err(&err)?;
                    Const::I(
                        t.data().iter().map(|&v| v as i64).collect(),
                        t.shape().to_vec(),
                    )
                }
            }
        }
        "Concat" => {
            let parts: Vec<&Const> = (0..inputs.len()).map(arg).collect::<Result<_, _>>()?;
            let rank = parts.first().map_or(0, |p| p.dims().len());
            let ax = shapes::axis(label, a.int("axis", 0)?, rank.max(1))?;
            if parts.iter().all(|p| matches!(p, Const::I(..))) && rank == 1 {
                let v: Vec<i64> = parts.iter().flat_map(|p| p.to_ints()).collect();
                let n = v.len();
                Const::I(v, vec![n])
            } else {
                let ts: Vec<Tensor> = parts.iter().map(|p| p.to_tensor()).collect();
                Const::F(Tensor::concat(&ts, ax).map_err(&err)?)
            }
        }
        "Neg" => match arg(0)? {
            Const::F(t) => Const::F(t.neg()),
            Const::I(v, d) => Const::I(v.iter().map(|x| x.wrapping_neg()).collect(), d.clone()),
        },
        op @ ("Add" | "Sub" | "Mul" | "Div") => match (arg(0)?, arg(1)?) {
            (x @ Const::I(..), y @ Const::I(..)) => int_binary(label, op, x, y)?,
            (x, y) => {
                let (x, y) = (x.to_tensor(), y.to_tensor());
                Const::F(
                    match op {
                        "Add" => x.add(&y),
                        "Sub" => x.sub(&y),
                        "Mul" => x.mul(&y),
                        _ => x.div(&y),
                    }
                    .map_err(&err)?,
                )
            }
        },
        other => {
            return Err(ImportError::Unsupported {
                op: other.to_string(),
                node: label.to_string(),
            })
        }
    })
}

/// `Gather` along `axis` with integer indices (negative ones count from the end).
fn gather(label: &str, data: &Const, idx: &Const, axis: i64) -> Result<Const, ImportError> {
    let dims = data.dims();
    let ax = shapes::axis(label, axis, dims.len())?;
    let len = dims[ax] as i64;
    let indices: Vec<usize> = idx
        .to_ints()
        .iter()
        .map(|&i| {
            let k = if i < 0 { i + len } else { i };
            usize::try_from(k)
                .ok()
                .filter(|&k| (k as i64) < len)
                .ok_or_else(|| {
                    ImportError::invalid(
                        label,
                        format!("gather index {i} is out of range 0..{len}"),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let outer: usize = dims[..ax].iter().product();
    let inner: usize = dims[ax + 1..].iter().product();
    let mut out_dims = dims[..ax].to_vec();
    out_dims.extend_from_slice(idx.dims());
    out_dims.extend_from_slice(&dims[ax + 1..]);
    let pick = |v: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &k in &indices {
                for i in 0..inner {
                    out.push(v((o * dims[ax] + k) * inner + i));
                }
            }
        }
        out
    };
    Ok(match data {
        Const::I(v, _) => Const::I(
            pick(&|i| v[i] as f64)
                .into_iter()
                .map(|x| x as i64)
                .collect(),
            out_dims,
        ),
        Const::F(t) => {
            let d = t.data();
            let vals = pick(&|i| d[i] as f64)
                .into_iter()
                .map(|x| x as f32)
                .collect();
            Const::F(Tensor::from_vec(vals, &out_dims).map_err(tensor_err(label))?)
        }
    })
}
