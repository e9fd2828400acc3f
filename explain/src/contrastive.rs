//! CLRP2: the target's relevance through the model minus its relevance through the
//! *dual* model, whose output layer is negated; the map is the positive part.
//!
//! Every rule passes relevance on linearly (given the recorded forward pass; property-
//! tested for every composite), and the two models differ only in their output layer.
//! Below it both walks apply the same linear maps, so their difference is walked once:
//! the output layer's rule runs on both models and passes the difference of its two
//! results down. One walk instead of two; [`clrp2_two_walks`] is the definition, kept
//! for models whose logits are not the output layer's own output, and for the tests.

use crate::audit::Audit;
use crate::composite::{Composite, RuleMap};
use crate::method::Recorded;
use crate::seed::Seed;
use relprop_core::{Derivative, Error, NodeId, Op, Result, Rule, RuleSet, Signals, Tape, Tensor};

/// The last linear or conv node before `output`, with its weight and bias: CLRP2 negates
/// them.
fn output_layer(tape: &Tape, output: NodeId) -> Result<(NodeId, NodeId, Option<NodeId>)> {
    tape.nodes()[..=output]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(id, n)| match &n.op {
            Op::Linear { w, b, .. } | Op::Conv2d { w, b, .. } => Some((id, *w, *b)),
            _ => None,
        })
        .ok_or_else(|| Error::invalid("clrp2", "the model has no linear or conv layer to negate"))
}

/// The dual model's tape: the output layer's weight and bias negated.
fn dual_tape(rec: &Recorded, w: NodeId, b: Option<NodeId>) -> Result<Tape> {
    let mut swaps = vec![(w, rec.tape.value(w)?.neg())];
    if let Some(b) = b {
        swaps.push((b, rec.tape.value(b)?.neg()));
    }
    rec.tape.rerun_with(&swaps)
}

/// A rule run on the model and on its dual; passes on the difference.
struct Difference<'a> {
    rule: &'a dyn Rule,
    dual: &'a Tape,
}

impl Rule for Difference<'_> {
    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let target = self.rule.backward(tape, id, signal)?;
        let dual = self.rule.backward(self.dual, id, signal)?;
        target
            .into_iter()
            .zip(dual)
            .map(|pair| match pair {
                (Some(t), Some(d)) => t.sub(&d).map(Some),
                (Some(t), None) => Ok(Some(t)),
                (None, Some(d)) => Ok(Some(d.neg())),
                (None, None) => Ok(None),
            })
            .collect()
    }
}

/// The composite's rules, with one node's rule replaced.
struct Override<'a> {
    rules: &'a RuleMap,
    node: NodeId,
    rule: &'a dyn Rule,
}

impl RuleSet for Override<'_> {
    fn rule_for(&self, tape: &Tape, id: NodeId) -> Option<&dyn Rule> {
        if id == self.node {
            Some(self.rule)
        } else {
            self.rules.rule_for(tape, id)
        }
    }
}

/// The audit of the signed difference (its seed sums to zero: the seeds cancel).
fn audit(
    rec: &Recorded,
    composite: &Composite,
    parts: &[(Vec<f64>, &Signals)],
    seed: &Tensor,
) -> Audit {
    let mut audit = Audit::new(
        &format!("clrp2 {}", composite.name),
        &rec.tape,
        rec.input,
        parts,
        &Tensor::zeros(seed.shape()),
    );
    audit
        .notes
        .push("CLRP2 target pass minus dual pass (signed, before the positive part)".into());
    audit
}

/// CLRP2 for targets `t`: `relu(R(model) - R(dual model))`, both seeded with `S_t e_t`.
pub(crate) fn clrp2(
    rec: &Recorded,
    composite: &Composite,
    logits: &Tensor,
    t: &[usize],
) -> Result<(Tensor, Audit)> {
    let (layer, w, b) = output_layer(&rec.tape, rec.output)?;
    if layer != rec.output {
        return clrp2_two_walks(rec, composite, logits, t);
    }
    let seed = Seed::TargetScore.build(logits, t)?.seed;
    let dual = dual_tape(rec, w, b)?;
    let rules = composite.resolve(&rec.tape);
    let difference = Difference {
        rule: rules.rule_for(&rec.tape, layer).unwrap_or(&Derivative),
        dual: &dual,
    };
    let walk = Override {
        rules: &rules,
        node: layer,
        rule: &difference,
    };
    let (r, signals) = rec.walk(&seed, &walk)?;
    let mut audit = audit(rec, composite, &[(vec![1.0; t.len()], &signals)], &seed);
    // At the logits the two walks' seeds cancel; the one walk carries the seed there.
    for row in audit.rows.iter_mut().filter(|r| r.node == rec.output) {
        row.sums.iter_mut().for_each(|s| *s = 0.0);
        row.errors.iter_mut().for_each(|e| *e = 0.0);
    }
    Ok((r.relu(), audit))
}

/// CLRP2 by its definition: one walk through the model, one through its dual.
pub(crate) fn clrp2_two_walks(
    rec: &Recorded,
    composite: &Composite,
    logits: &Tensor,
    t: &[usize],
) -> Result<(Tensor, Audit)> {
    let seed = Seed::TargetScore.build(logits, t)?.seed;
    let (_, w, b) = output_layer(&rec.tape, rec.output)?;
    let dual = Recorded {
        tape: dual_tape(rec, w, b)?,
        input: rec.input,
        output: rec.output,
    };
    let rules: RuleMap = composite.resolve(&rec.tape);
    let (r_target, s_target) = rec.walk(&seed, &rules)?;
    let (r_dual, s_dual) = dual.walk(&seed, &rules)?;
    let n = t.len();
    let parts = [(vec![1.0; n], &s_target), (vec![-1.0; n], &s_dual)];
    let audit = audit(rec, composite, &parts, &seed);
    Ok((r_target.sub(&r_dual)?.relu(), audit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::record;
    use relprop_zoo::Architecture;

    #[test]
    fn one_walk_of_the_difference_equals_two_walks() {
        let composites = [
            Composite::epsilon_plus(1e-6),
            Composite::epsilon_alpha2_beta1(1e-6),
            Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0)),
        ];
        for arch in [
            Architecture::Mlp,
            Architecture::Lenet5,
            Architecture::VggSmall,
        ] {
            let model = relprop_zoo::pretrained::load(arch).unwrap();
            let [c, h, w] = arch.input_shape();
            let x = Tensor::rand_uniform(&[3, c, h, w], 0.0, 1.0, 9);
            let rec = record(&model, &x).unwrap();
            let logits = rec.logits().clone();
            let t = [1, 4, 9];
            for composite in &composites {
                let rec = Recorded {
                    tape: composite.canonize(&rec.tape).unwrap(),
                    input: rec.input,
                    output: rec.output,
                };
                let (one, a1) = clrp2(&rec, composite, &logits, &t).unwrap();
                let (two, a2) = clrp2_two_walks(&rec, composite, &logits, &t).unwrap();
                // With Epsilon on the output layer the dual's relevance equals the target's
                // (negating W and z cancels), so only ZPlus there gives a map.
                if composite.name.contains("deep-taylor") {
                    assert!(
                        two.max_abs() > 0.0,
                        "{arch:?} {}: empty map",
                        composite.name
                    );
                }
                let diff = one.max_rel_diff(&two).unwrap();
                assert!(diff < 1e-4, "{arch:?} {}: {diff}", composite.name);
                assert_eq!(a1.rows.len(), a2.rows.len());
                for (r1, r2) in a1.rows.iter().zip(&a2.rows) {
                    assert_eq!(r1.node, r2.node);
                    for (s1, s2) in r1.sums.iter().zip(&r2.sums) {
                        assert!((s1 - s2).abs() <= 1e-4 * s2.abs() + 1e-6, "{s1} vs {s2}");
                    }
                }
            }
        }
    }
}
