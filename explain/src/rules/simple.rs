//! Rules for the nodes between layers: activations, sums, pooling, reshapes.

use super::affine::stabilize;
use super::family::STABILIZER;
use relprop_core::{vjp, Error, NodeId, Op, Result, Rule, Tape, Tensor};

/// Passes relevance through unchanged: ReLU and other elementwise activations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pass;

impl Rule for Pass {
    fn name(&self) -> String {
        "pass".into()
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let n = tape.node(id)?.op.inputs().len();
        let mut out = vec![None; n];
        out[0] = Some(signal.clone());
        Ok(out)
    }
}

/// The exact derivative, chosen on purpose: max pooling (winner takes all, as Zennit) and
/// shape changes (reshape, flatten, permute), which move values without mixing them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gradient;

impl Rule for Gradient {
    fn name(&self) -> String {
        "gradient".into()
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        vjp(tape, id, signal)
    }
}

/// Elementwise arithmetic (`add`, `sub`, `mul`, `div`) between a computed value and a
/// constant, such as an input normalisation `(x - mean) / std`: a shift or a scale does not
/// mix values, so the relevance passes unchanged to the computed operand. Between two
/// computed values, `add` is a sum and gets [`Norm`]; other ops are an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Elementwise;

impl Rule for Elementwise {
    fn name(&self) -> String {
        "elementwise".into()
    }

    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        let node = tape.node(id)?;
        let computed = node
            .op
            .inputs()
            .iter()
            .filter(|&&i| tape.nodes()[i].tracks())
            .count();
        match (&node.op, computed) {
            (Op::Add(..), 2) => Norm.absorbed(tape, id, signal),
            _ => Ok(None),
        }
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let node = tape.node(id)?;
        let inputs = node.op.inputs();
        let computed: Vec<usize> = (0..inputs.len())
            .filter(|&k| tape.nodes()[inputs[k]].tracks())
            .collect();
        match (computed.as_slice(), &node.op) {
            (&[k], _) => {
                // A computed operand that was broadcast receives the sum over the copies.
                let shape = tape.value(inputs[k])?.shape();
                let mut out = vec![None; inputs.len()];
                out[k] = Some(signal.sum_to(shape)?);
                Ok(out)
            }
            (_, Op::Add(..)) => Norm.backward(tape, id, signal),
            _ => Err(Error::Backward {
                op: node.describe(),
                reason: format!(
                    "{} of two computed values has no LRP rule (only add, which is split by Norm)",
                    node.op.name()
                ),
            }),
        }
    }
}

/// Proportional split for sums and average pooling: each input term receives relevance in
/// proportion to its contribution, `R_a = a / s(a + b) * R`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Norm;

impl Norm {
    /// Hands each input of the sum or average-pooling node `id` its share of the ratio
    /// `s = R / z`: `R_a = a * J_a^T(s)`. (The rule divides by the stabilised z; other
    /// divisions, such as an exact one, can reuse this.)
    pub fn distribute(tape: &Tape, id: NodeId, s: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let node = tape.node(id)?;
        match &node.op {
            Op::Add(a, b) => {
                let share = |x: NodeId| -> Result<Option<Tensor>> {
                    let v = tape.value(x)?;
                    Ok(Some(v.mul(s)?.sum_to(v.shape())?))
                };
                Ok(vec![share(*a)?, share(*b)?])
            }
            Op::AvgPool2d { x, spec } => {
                let v = tape.value(*x)?;
                Ok(vec![Some(v.mul(&Tensor::avg_pool2d_grad(
                    s,
                    v.shape(),
                    spec,
                )?)?)])
            }
            _ => Err(Error::Backward {
                op: node.describe(),
                reason: "the Norm rule applies to add and avg_pool2d nodes".into(),
            }),
        }
    }
}

impl Rule for Norm {
    fn name(&self) -> String {
        "norm".into()
    }

    /// The inputs share `s . z` with `s = R / stab(z)`: the stabiliser keeps `R - s . z`.
    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        let z = &tape.node(id)?.value;
        let s = signal.div(&stabilize(z, STABILIZER))?;
        let lost = signal.sub(&s.mul(z)?)?;
        Ok(Some(crate::audit::per_sample_sums(&lost)))
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let s = signal.div(&stabilize(&tape.node(id)?.value, STABILIZER))?;
        Norm::distribute(tape, id, &s)
    }
}

/// Stands for "no rule was chosen for this op": reaching it is an error that names the op,
/// never a silent fall-back to the derivative (which would, e.g., double relevance at a sum).
#[derive(Clone, Debug)]
pub struct Unsupported;

impl Rule for Unsupported {
    fn name(&self) -> String {
        "unsupported".into()
    }

    fn backward(&self, tape: &Tape, id: NodeId, _signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let node = tape.node(id)?;
        Err(Error::Backward {
            op: node.describe(),
            reason: format!(
                "the composite has no rule for {} nodes (fold BatchNorm with a canonizer, or map a rule to this op)",
                node.op.name()
            ),
        })
    }
}
