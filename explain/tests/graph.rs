//! `graph_dot`: the recorded graph with each node's op, shape, rule and relevance sum.

use relprop_core::Tensor;
use relprop_explain::{graph_dot, Composite, Seed, Targets};
use relprop_nn::{Linear, Relu, Sequential};

/// The course's 3-neuron network: x = (1, 2), h = relu((x1 + x2, 3 x1 - x2)) = (3, 1),
/// y = h1 + 2 h2 = 5.
fn three_neurons() -> Sequential {
    let hidden = Tensor::from_vec(vec![1.0, 1.0, 3.0, -1.0], &[2, 2]).unwrap();
    let output = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
    Sequential::new("net")
        .with(Linear::from_params("hidden", hidden, None).unwrap())
        .with(Relu::new())
        .with(Linear::from_params("output", output, None).unwrap())
}

fn node_line<'a>(dot: &'a str, name: &str) -> &'a str {
    dot.lines()
        .find(|l| l.contains(&format!("label=\"{name}\\n")))
        .unwrap_or_else(|| panic!("no node {name} in\n{dot}"))
}

#[test]
fn nodes_carry_op_shape_rule_and_relevance() {
    let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
    let walk = (Targets::Class(0), Seed::OneHot);
    // Epsilon(1) by hand: R_h = (3/6, 2/6), sum 0.8333; the input gets
    // (1/4 * 0.5 + 3/2 * 1/3, 2/4 * 0.5 - 2/2 * 1/3) = (0.625, -0.0833), sum 0.5417.
    let dot = graph_dot(&three_neurons(), &x, &Composite::epsilon(1.0), Some(&walk)).unwrap();
    assert!(dot.starts_with("digraph relprop {") && dot.trim_end().ends_with('}'));
    let output = node_line(&dot, "output");
    assert!(output.contains("op: linear") && output.contains("shape: [1]"));
    assert!(output.contains("rule: epsilon(1)") && output.contains("R sum: +1.0000"));
    let hidden = node_line(&dot, "hidden");
    assert!(
        hidden.contains("shape: [2]") && hidden.contains("R sum: +0.8333"),
        "{hidden}"
    );
    let input = node_line(&dot, "input");
    assert!(input.contains("R sum: +0.5417"), "{input}");
    // Weights are left out: input -> hidden -> relu -> output.
    assert_eq!(dot.matches(" -> ").count(), 3, "{dot}");
    assert!(dot.contains("rule: pass"));
}

#[test]
fn without_a_walk_there_are_rules_but_no_sums() {
    let x = Tensor::zeros(&[1, 2]);
    let dot = graph_dot(&three_neurons(), &x, &Composite::zero(), None).unwrap();
    assert!(dot.contains("rule: lrp-0") && !dot.contains("R sum"));
    assert!(dot.contains("label=\"rules: zero\""));
}
