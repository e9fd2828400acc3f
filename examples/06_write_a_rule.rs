//! Lesson 6: writing your own LRP rule, with no change to the core. Two ways:
//!
//! 1. **A configuration of the recipe** (try this first). Every affine rule is the recipe
//!    of `relprop::explain::rules::affine` (modify, z, `s = R / stab(z)`, `c = VJP(s)`,
//!    `R = x * c`) with some settings. Here: Epsilon whose stabiliser scales with each
//!    layer's own z, `stab(z) = z + eps * rms(z) * sign(z)` (Zennit's `norm_scale`), so
//!    one `eps` suits layers of very different magnitude. No new code runs: it is data.
//! 2. **The full `Rule` trait**, for what the recipe cannot say. Here: *Epsilon, rescaled*:
//!    the recipe's Epsilon, then each sample's input relevance scaled so that it sums to
//!    what reached the layer's output, i.e. what biases and the stabiliser kept back is
//!    handed on in Epsilon's proportions (an illustration of the trait, not a recommended
//!    rule: it hides what the audit would show).
//!
//! Both explain the trained `lenet5` on a real test digit, next to plain Epsilon; the
//! figure goes to `relprop-examples/06_write_a_rule.png`.
//! Run: `cargo run --release --example 06_write_a_rule`.

use relprop::core::{Error, NodeId, Result, Rule, Tape, Tensor};
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::rules::{Affine, BasicRule, Branch, Group, InputMod, ParamMod, Stabilizer};
use relprop::explain::{explain, Composite, LayerKind, Method, Seed, Targets};
use relprop::zoo::{digits, pretrained, Architecture};

/// Way 1: Epsilon with a norm-scaled stabiliser, as a configuration of the recipe.
fn epsilon_rms(eps: f32) -> BasicRule {
    let unmodified = Branch::new(InputMod::Identity, ParamMod::Identity, ParamMod::Identity);
    let group = Group::new(vec![unmodified]).with_stabilizer(Stabilizer::NormScale(eps));
    BasicRule::new(format!("epsilon-rms({eps})"), vec![group])
}

/// Way 2: Epsilon rescaled to conserve each layer's relevance, as a `Rule` of its own.
struct EpsilonRescaled(f32);

impl Rule for EpsilonRescaled {
    fn name(&self) -> String {
        format!("epsilon-rescaled({})", self.0)
    }

    fn backward(&self, tape: &Tape, id: NodeId, r: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let layer = Affine::of(tape, id)?; // the node's input, weight, bias and output
        let z = layer.output(); // 1. no modification; 2. z is the recorded output
        let eps = self.0;
        let s = r.zip_with(z, "epsilon", |r, z| r / (z + eps * z.signum()))?; // 3. divide
        let c = layer.vjp(&s, layer.weight())?; // 4. the layer's own VJP
        let r_in = layer.input().mul(&c)?; // 5. multiply by the input
                                           // Beyond the recipe: per sample, scale the input's relevance to the output's sum.
        let n = r.shape()[0];
        let (per_in, per_out) = (r_in.numel() / n, r.numel() / n);
        let mut data = r_in.into_vec();
        for (k, sample) in data.chunks_mut(per_in).enumerate() {
            let received: f32 = r.data()[k * per_out..(k + 1) * per_out].iter().sum();
            let handed: f32 = sample.iter().sum();
            if handed.abs() > 1e-12 {
                sample.iter_mut().for_each(|v| *v *= received / handed);
            }
        }
        let mut out = vec![None; tape.node(id)?.op.inputs().len()];
        out[0] = Some(Tensor::from_vec(data, layer.input().shape())?); // weight, bias: none
        Ok(out)
    }
}

fn main() -> Result<()> {
    let model = pretrained::load(Architecture::Lenet5)
        .map_err(|e| Error::invalid("weights", e.to_string()))?;
    let data = digits::load().map_err(|e| Error::invalid("digits", e.to_string()))?;
    let i = data.test_indices()[0];
    let (x, label) = (
        Tensor::from_vec(data.image_f32(i), &[1, 1, 28, 28])?,
        data.label(i),
    );
    let eps = 0.25;
    let rules: Vec<(&str, Composite)> = vec![
        ("epsilon", Composite::epsilon(eps)),
        (
            "epsilon-rms",
            Composite::new("epsilon-rms").kind(LayerKind::Any, epsilon_rms(eps)),
        ),
        (
            "rescaled",
            Composite::new("rescaled").kind(LayerKind::Any, EpsilonRescaled(eps)),
        ),
    ];
    let mut cells = vec![Cell::Input(x.data().to_vec(), 28, 28)];
    println!("test digit {i}, a {label}; explained for class {label} with seed e_t (one-hot)");
    println!(
        "{:<13} {:>12} {:>14} {:>10}",
        "rule", "logit z_t", "input sum R", "kept back"
    );
    for (name, composite) in &rules {
        let method = Method::Lrp {
            composite: composite.clone(),
            seed: Seed::OneHot,
        };
        let a = explain(&model, &x, &Targets::Class(label), &method)?;
        let (logit, sum) = (a.logits.data()[label], a.relevance.sum_all());
        // Below the printed precision, say 0 (not "-0.0").
        let kept = if (1.0 - sum).abs() < 5e-4 {
            0.0
        } else {
            1.0 - sum
        };
        println!(
            "{name:<13} {logit:>12.3} {sum:>14.4} {:>9.1}%",
            100.0 * kept
        );
        cells.push(Cell::Heatmap(a.relevance.into_vec(), 28, 28, ColorMap::Bwr));
    }
    println!(
        "\nThe seed puts relevance 1 on the logit. A rule that conserved exactly would hand all
of it to the pixels. Epsilon keeps back, at every layer, the biases' share and what the
stabiliser absorbs where |z| is not much larger than eps (eps = {eps} is large on purpose,
to show it). Epsilon-rms adds eps * rms(z) instead of eps, rms(z) being the layer's typical
|z|: here that makes its stabiliser larger than a fixed eps, so it keeps back more.
Rescaled hands everything on by construction (0% kept back) in Epsilon's proportions."
    );
    let mut grid = Grid::new(112, 6);
    grid.column_titles(["input", "epsilon", "epsilon-rms", "rescaled"]);
    grid.add_titled_row(format!("digit {label}"), cells);
    grid.legend(ColorMap::Bwr, ["red: for the class, blue: against"]);
    std::fs::create_dir_all("relprop-examples")
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    let path = std::path::Path::new("relprop-examples/06_write_a_rule.png");
    grid.save(path)
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    println!("wrote {}", path.display());
    Ok(())
}
