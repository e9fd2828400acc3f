//! Beyond the input map: relevance at every labelled node, and walks that start at one
//! unit (or channel) of an intermediate layer instead of a logit.
//!
//! A backward walk already computes the signal at every node; [`explain_layers`] keeps
//! the ones at labelled nodes. With a [`Neuron`] the walk starts at that node with the
//! indicator of the unit as its seed: the gradient of the unit's value (summed over the
//! channel's positions for a conv channel), or its LRP relevance under the composite.

use crate::audit::Audit;
use crate::method::{record, Method};
use crate::seed::{Seed, Targets};
use relprop_core::kernels::split::on_pool;
use relprop_core::{Error, Exact, NodeId, Result, RuleSet, Tape, Tensor};
use relprop_nn::Module;

/// One unit of a labelled node: index `index` of a `[n, units]` value, or channel `index`
/// of a `[n, channels, ...]` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neuron {
    /// The node's label, e.g. `features.conv2`.
    pub label: String,
    /// The unit or channel.
    pub index: usize,
}

impl Neuron {
    /// Parses `LABEL:INDEX` (the label may itself contain colons).
    pub fn parse(text: &str) -> Result<Neuron> {
        let bad = || Error::invalid("neuron", format!("expected LABEL:INDEX, got '{text}'"));
        let (label, index) = text.rsplit_once(':').ok_or_else(bad)?;
        let index = index.trim().parse().map_err(|_| bad())?;
        if label.is_empty() {
            return Err(bad());
        }
        Ok(Neuron {
            label: label.to_string(),
            index,
        })
    }
}

/// Relevance (or gradient) at every labelled node of one walk.
pub struct LayerMaps {
    /// The input map, the input's shape.
    pub input: Tensor,
    /// `(label, map)` for every labelled node the walk reached, from the output down.
    pub layers: Vec<(String, Tensor)>,
    /// The model's logits.
    pub logits: Tensor,
    /// The explained class per sample (empty when a neuron was explained).
    pub targets: Vec<usize>,
    /// Per-layer sums and conservation errors.
    pub audit: Audit,
}

impl LayerMaps {
    /// The map at the node labelled `label`.
    pub fn at(&self, label: &str) -> Option<&Tensor> {
        self.layers.iter().find(|(l, _)| l == label).map(|(_, t)| t)
    }
}

/// The last node labelled `label` that an op made (not a parameter).
fn labelled_node(tape: &Tape, label: &str) -> Result<NodeId> {
    tape.nodes()
        .iter()
        .rposition(|n| n.label.as_deref() == Some(label) && !n.op.inputs().is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "explain",
                format!("the model has no layer labelled '{label}' (`relprop info` lists them)"),
            )
        })
}

/// The indicator seed of `neuron` on a value of shape `shape`.
fn neuron_seed(shape: &[usize], neuron: &Neuron) -> Result<Tensor> {
    let units = shape.get(1).copied().unwrap_or(0);
    if shape.len() < 2 || neuron.index >= units {
        return Err(Error::shape(
            "neuron",
            &[shape],
            format!(
                "{} has no unit or channel {} (it has {units})",
                neuron.label, neuron.index
            ),
        ));
    }
    let per_unit: usize = shape[2..].iter().product();
    let mut data = vec![0.0f32; shape.iter().product()];
    for chunk in data.chunks_mut(units * per_unit) {
        chunk[neuron.index * per_unit..(neuron.index + 1) * per_unit].fill(1.0);
    }
    Tensor::from_vec(data, shape)
}

/// Walks back from the logits (seeded by the method for `targets`), or from `neuron`, and
/// returns the map at every labelled node. Methods: gradient, gradient x input (each map
/// times its node's value), LRP, SGLRP and CLRP1 (the positive part at every node); from a
/// neuron only gradient, gradient x input and LRP, whose seed is the unit's indicator.
pub fn explain_layers(
    model: &dyn Module,
    x: &Tensor,
    targets: &Targets,
    method: &Method,
    neuron: Option<&Neuron>,
) -> Result<LayerMaps> {
    on_pool(|| {
        let mut rec = record(model, x)?;
        if let Some(c) = method.composite() {
            rec.tape = c.canonize(&rec.tape)?;
        }
        let logits = rec.logits().clone();
        let (seed_kind, exact) = match method {
            Method::Gradient | Method::GradientXInput => (Seed::OneHot, true),
            Method::Lrp { seed, .. } => (seed.clone(), false),
            Method::Sglrp { .. } if neuron.is_none() => (Seed::SoftmaxGradient, false),
            Method::Clrp1 { .. } if neuron.is_none() => (Seed::Clrp1, false),
            _ => {
                return Err(Error::invalid(
                    "explain",
                    "maps at a layer or from a neuron work with gradient, gradient-x-input and lrp (and, from the logits, sglrp and clrp1)",
                ))
            }
        };
        let (root, seed, t, notes) = match neuron {
            Some(nr) => {
                let id = labelled_node(&rec.tape, &nr.label)?;
                (
                    id,
                    neuron_seed(rec.tape.value(id)?.shape(), nr)?,
                    vec![],
                    vec![],
                )
            }
            None => {
                let t = targets.resolve(&logits)?;
                let built = seed_kind.build(&logits, &t)?;
                (rec.output, built.seed, t, built.notes)
            }
        };
        let resolved;
        let rules: &dyn RuleSet = match method.composite() {
            Some(c) if !exact => {
                resolved = c.resolve(&rec.tape);
                &resolved
            }
            _ => &Exact,
        };
        let signals = rec.tape.backward(root, &seed, rules)?;
        let finish = |id: NodeId, s: &Tensor| -> Result<Tensor> {
            match method {
                Method::GradientXInput => s.mul(rec.tape.value(id)?),
                Method::Clrp1 { .. } => Ok(s.relu()),
                _ => Ok(s.clone()),
            }
        };
        let mut layers = Vec::new();
        for (id, node) in rec.tape.nodes().iter().enumerate().rev() {
            let Some(label) = node
                .label
                .as_ref()
                .filter(|_| !node.op.inputs().is_empty() || id == rec.input)
            else {
                continue;
            };
            if let Some(s) = signals.get(id) {
                layers.push((label.clone(), finish(id, s)?));
            }
        }
        let input = finish(rec.input, &signals.get_or_zeros(&rec.tape, rec.input)?)?;
        let n = seed.shape()[0];
        let mut audit = Audit::new(
            "layers",
            &rec.tape,
            rec.input,
            &[(vec![1.0; n], &signals)],
            &seed,
        );
        audit.notes = notes;
        Ok(LayerMaps {
            input,
            layers,
            logits,
            targets: t,
            audit,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neurons_parse_and_their_seeds_mark_one_channel() {
        let n = Neuron::parse("features.conv1:3").unwrap();
        assert_eq!(
            n,
            Neuron {
                label: "features.conv1".into(),
                index: 3
            }
        );
        assert_eq!(Neuron::parse("a:b:1").unwrap().label, "a:b");
        assert!(Neuron::parse("conv1").is_err());
        assert!(Neuron::parse(":2").is_err());
        assert!(Neuron::parse("x:-1").is_err());
        let s = neuron_seed(
            &[2, 3, 2, 2],
            &Neuron {
                label: "c".into(),
                index: 1,
            },
        )
        .unwrap();
        assert_eq!(s.sum_all(), 2.0 * 4.0);
        assert_eq!(s.get(&[1, 1, 0, 1]).unwrap(), 1.0);
        assert_eq!(s.get(&[1, 2, 0, 1]).unwrap(), 0.0);
        assert!(neuron_seed(
            &[2, 3],
            &Neuron {
                label: "c".into(),
                index: 3
            }
        )
        .is_err());
    }
}
