//! Lesson 2: the tape, and why its backward rules are swappable.
//!
//! Recording a forward pass appends nodes to a tape. `backward` walks the tape in reverse
//! and, at each node, asks a `RuleSet` how to pass the signal on. `Exact` always answers
//! "the derivative": that is reverse-mode autodiff. Another rule set can answer differently
//! for some nodes, over the *same* recording. Run: `cargo run --release --example 02_tape`.

use relprop::core::{Exact, NodeId, Result, Rule, RuleSet, Tape, Tensor};

/// Lets the signal through a node unchanged, ignoring the node's derivative.
struct PassThrough;

impl Rule for PassThrough {
    fn backward(&self, _tape: &Tape, _id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(signal.clone())]) // one signal per input; a ReLU has one input
    }
}

/// Uses `PassThrough` at every ReLU, the derivative elsewhere.
struct PassReLUs;

impl RuleSet for PassReLUs {
    fn rule_for(&self, tape: &Tape, id: NodeId) -> Option<&dyn Rule> {
        let node = tape.node(id).ok()?;
        (node.op.name() == "relu").then_some(&PassThrough as &dyn Rule)
    }
}

fn main() -> Result<()> {
    // y = w2 . relu(W1 x): a two-layer network on a 3-vector.
    let mut tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0, -2.0, 0.5], &[1, 3])?);
    let w1 = tape.param(
        Tensor::from_vec(vec![1.0, 1.0, 0.0, 0.0, -1.0, 2.0], &[2, 3])?,
        "fc1.weight",
    );
    let w2 = tape.param(Tensor::from_vec(vec![1.0, -1.0], &[1, 2])?, "fc2.weight");
    let h = tape.linear(x, w1, None)?;
    let a = tape.relu(h)?;
    let y = tape.linear(a, w2, None)?;
    println!(
        "h = {:?}, relu(h) = {:?}, y = {:?}",
        tape.value(h)?,
        tape.value(a)?,
        tape.value(y)?
    );

    // 1. Exact derivatives: the gradient of y with respect to everything on the tape.
    let seed = Tensor::ones(&[1, 1]);
    let grads = tape.backward(y, &seed, &Exact)?;
    println!("dy/dx  = {:?}", grads.get(x).unwrap());
    println!("dy/dW1 = {:?}", grads.get(w1).unwrap());

    // 2. Same tape, another rule set: the ReLU now passes its signal unchanged.
    let passed = tape.backward(y, &seed, &PassReLUs)?;
    println!(
        "signal at x with pass-through ReLUs = {:?}",
        passed.get(x).unwrap()
    );

    // Every node's signal is available: per-layer inspection comes for free.
    for (id, node) in tape.nodes().iter().enumerate() {
        if let Some(s) = grads.get(id) {
            println!(
                "node {id:>2} {:<24} signal sum {:+.3}",
                node.describe(),
                s.sum_all()
            );
        }
    }
    Ok(())
}
