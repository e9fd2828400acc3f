//! ZBox bounds given for the model's raw input, carried to the layer they apply to.
//!
//! A model that normalises its input inside the graph (`(x - mean) / std`, then a conv)
//! explains the raw input, but its first layer sees the normalised one: bounds such as
//! `0 <= x <= 1` must go through the same shifts, scales and zero padding before ZBox uses
//! them. This walks back from a layer's input through such ops to the tape's input and
//! applies them, in forward order, to one sample's bound.

use relprop_core::{Error, NodeId, Op, Result, Tape, Tensor};

/// One step between the raw input and a layer, applied to a bound `b` as the model
/// applies it to its input.
enum Step {
    /// `b + c`, `b - c` (or `c - b`), `b * c`, `b / c` (or `c / b`) with constant node `c`.
    Binary {
        op: Binary,
        constant: NodeId,
        constant_first: bool,
    },
    /// `b + s` or `b * s`.
    Scalar { add: bool, value: f32 },
    /// Zeros before and after each axis.
    Pad {
        before: Vec<usize>,
        after: Vec<usize>,
    },
}

/// The elementwise ops a normalisation is made of.
#[derive(Clone, Copy)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// The steps from the tape's input to node `x`, in forward order, if `x` is reached from
/// an input leaf through constant shifts, scales and padding only (none for the input).
fn chain_to_input(tape: &Tape, mut x: NodeId) -> Option<(NodeId, Vec<Step>)> {
    let mut steps = Vec::new();
    let tracks = |id: NodeId| tape.nodes()[id].tracks();
    loop {
        let node = tape.node(x).ok()?;
        let step = match &node.op {
            Op::Leaf { .. } => {
                steps.reverse();
                return Some((x, steps));
            }
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) => {
                let (computed, constant, constant_first) = match (tracks(*a), tracks(*b)) {
                    (true, false) => (*a, *b, false),
                    (false, true) => (*b, *a, true),
                    _ => return None,
                };
                x = computed;
                let op = match node.op {
                    Op::Add(..) => Binary::Add,
                    Op::Sub(..) => Binary::Sub,
                    Op::Mul(..) => Binary::Mul,
                    _ => Binary::Div,
                };
                Step::Binary {
                    op,
                    constant,
                    constant_first,
                }
            }
            Op::AddScalar(a, value) | Op::MulScalar(a, value) => {
                x = *a;
                Step::Scalar {
                    add: matches!(node.op, Op::AddScalar(..)),
                    value: *value,
                }
            }
            Op::Pad {
                x: a,
                before,
                after,
            } => {
                x = *a;
                Step::Pad {
                    before: before.clone(),
                    after: after.clone(),
                }
            }
            _ => return None,
        };
        steps.push(step);
    }
}

/// A bound (a scalar, or one sample of the raw input) mapped to one sample of the value
/// at node `x`: unchanged when `x` is not reached from the input through constant shifts,
/// scales and padding, or when it is the input itself.
pub(crate) fn bound_at(tape: &Tape, x: NodeId, bound: &Tensor) -> Result<Tensor> {
    let Some((input, steps)) = chain_to_input(tape, x) else {
        return Ok(bound.clone());
    };
    if steps.is_empty() {
        return Ok(bound.clone());
    }
    let mut one = tape.value(input)?.shape().to_vec();
    if one.is_empty() {
        return Ok(bound.clone());
    }
    one[0] = 1;
    let per_sample: usize = one[1..].iter().product();
    let mut b = if bound.numel() == 1 {
        Tensor::full(&one, bound.data()[0])
    } else if bound.numel() == per_sample {
        bound.reshape(&one)?
    } else {
        return Err(Error::shape(
            "zbox bounds",
            &[bound.shape(), &one],
            "bounds must be a scalar or one input sample's shape",
        ));
    };
    for step in steps {
        b = match step {
            Step::Binary {
                op,
                constant,
                constant_first,
            } => {
                let c = tape.value(constant)?;
                let (l, r) = if constant_first { (c, &b) } else { (&b, c) };
                match op {
                    Binary::Add => l.add(r)?,
                    Binary::Sub => l.sub(r)?,
                    Binary::Mul => l.mul(r)?,
                    Binary::Div => l.div(r)?,
                }
            }
            Step::Scalar { add: true, value } => b.add_scalar(value),
            Step::Scalar { add: false, value } => b.mul_scalar(value),
            // Padding of the bound is zeros, as a convolution's own padding would be.
            Step::Pad { before, after } => b.pad(&before, &after)?,
        };
    }
    Ok(b)
}
