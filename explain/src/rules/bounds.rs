//! ZBox bounds given for the model's raw input, carried to the layer they apply to.
//!
//! A model that normalises its input inside the graph (`(x - mean) / std`, then a conv)
//! explains the raw input, but its first layer sees the normalised one: bounds such as
//! `0 <= x <= 1` must go through the same shifts, scales and zero padding before ZBox uses
//! them. This walks back from a layer's input through such ops to the tape's input and
//! applies them, in forward order, to one sample's bound.

use relprop_core::{Error, NodeId, Op, Result, Tape, Tensor};

/// One step between the raw input and a layer: an elementwise op with a constant operand
/// (the other operand's node id and whether it comes first), or zero padding.
enum Step {
    Binary {
        op: Op,
        constant: NodeId,
        constant_first: bool,
    },
    Pad {
        before: Vec<usize>,
        after: Vec<usize>,
    },
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
                Step::Binary {
                    op: node.op.clone(),
                    constant,
                    constant_first,
                }
            }
            Op::AddScalar(a, _) | Op::MulScalar(a, _) => {
                x = *a;
                Step::Binary {
                    op: node.op.clone(),
                    constant: *a,
                    constant_first: false,
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
                    Op::Add(..) => l.add(r)?,
                    Op::Sub(..) => l.sub(r)?,
                    Op::Mul(..) => l.mul(r)?,
                    Op::Div(..) => l.div(r)?,
                    Op::AddScalar(_, s) => b.add_scalar(s),
                    Op::MulScalar(_, s) => b.mul_scalar(s),
                    _ => unreachable_step()?,
                }
            }
            // Padding of the bound is zeros, as a convolution's own padding would be.
            Step::Pad { before, after } => b.pad(&before, &after)?,
        };
    }
    Ok(b)
}

fn unreachable_step() -> Result<Tensor> {
    Err(Error::invalid(
        "zbox bounds",
        "an unexpected op between the input and the layer",
    ))
}
