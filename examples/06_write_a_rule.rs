//! Lesson 6: writing your own LRP rule, with no change to the core.
//!
//! A rule is any type implementing `Rule`: given the relevance at a node's output, return
//! one signal per input of the node. Here: the "z^B-free" *Epsilon-abs* rule, which divides
//! by `|z| + eps` instead of `z + eps sign(z)`, so negative pre-activations flip the sign of
//! their share. Run: `cargo run --release --example 06_write_a_rule`.

use relprop::core::{NodeId, Result, Rule, Tape, Tensor};
use relprop::explain::rules::Affine;
use relprop::explain::{explain, Composite, LayerKind, Method, Seed, Targets};
use relprop::zoo::Architecture;

/// Epsilon with an absolute-value denominator.
struct EpsilonAbs(f32);

impl Rule for EpsilonAbs {
    fn backward(&self, tape: &Tape, id: NodeId, r: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let layer = Affine::of(tape, id)?; // the node's input, weight, bias and output
        let z = layer.output(); // 1. no modification; 2. z is the recorded output
        let s = r.zip_with(z, "epsilon-abs", |r, z| r / (z.abs() + self.0))?; // 3. divide
        let g = layer.vjp(&s, layer.weight())?; // 4. the layer's own VJP
        let r_in = layer.input().mul(&g)?; // 5. multiply by the input
        let mut out = vec![None; tape.node(id)?.op.inputs().len()];
        out[0] = Some(r_in); // relevance goes to the input; weight and bias get none
        Ok(out)
    }
}

fn main() -> Result<()> {
    let model = Architecture::Lenet5.build(1);
    let x = Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 3);
    let composite = Composite::new("epsilon-abs").kind(LayerKind::Any, EpsilonAbs(1e-6));
    let a = explain(
        &model,
        &x,
        &Targets::Class(4),
        &Method::Lrp {
            composite,
            seed: Seed::OneHot,
        },
    )?;
    print!("{}", a.audit);
    Ok(())
}
