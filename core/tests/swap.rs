//! The swap: one recorded forward pass, walked back with different rule sets.
//!
//! If rules were bound when the pass was recorded, the second walk would repeat the first.

use relprop_core::{Exact, NodeId, Result, Rule, RuleSet, Tape, Tensor};

/// Passes the signal through unchanged (what LRP does at a ReLU).
struct PassThrough;
impl Rule for PassThrough {
    fn backward(&self, _tape: &Tape, _id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(signal.clone())])
    }
}

/// Chooses `PassThrough` for exactly one node, the derivative elsewhere.
struct OnOneNode(NodeId);
impl RuleSet for OnOneNode {
    fn rule_for(&self, _tape: &Tape, id: NodeId) -> Option<&dyn Rule> {
        (id == self.0).then_some(&PassThrough as &dyn Rule)
    }
}

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

#[test]
fn one_recording_two_walks() -> Result<()> {
    // x [1,3] -> linear W1 [2,3] -> relu -> linear W2 [1,2]
    let x0 = t(&[1.0, 2.0, -1.0], &[1, 3]);
    let w1v = t(&[1.0, 0.0, 1.0, -1.0, 1.0, 2.0], &[2, 3]); // h = [0, -1]+... see below
    let w2v = t(&[3.0, 5.0], &[1, 2]);
    let mut tape = Tape::new();
    let x = tape.leaf(x0.clone());
    let w1 = tape.param(w1v.clone(), "fc1.weight");
    let w2 = tape.param(w2v.clone(), "fc2.weight");
    let h = tape.linear(x, w1, None)?; // h = [1*1 + 0*2 + 1*-1, -1 + 2 - 2] = [0, -1]
    let a = tape.relu(h)?; // a = [0, 0]: both units are off
    let y = tape.linear(a, w2, None)?;
    let before: Vec<Tensor> = tape.nodes().iter().map(|n| n.value.clone()).collect();
    assert_eq!(tape.value(h)?.data(), &[0.0, -1.0]);

    // Custom walk first, exact walk second: if anything had been fixed at record time
    // (or by the first walk), one of the two results below would be wrong.
    let seed = Tensor::ones(&[1, 1]);
    let custom = tape.backward(y, &seed, &OnOneNode(a))?;
    let exact = tape.backward(y, &seed, &Exact)?;

    // True gradient: no unit is active, so dy/dx = 0 and dy/dW1 = 0.
    assert_eq!(exact.get(x).unwrap().data(), &[0.0, 0.0, 0.0]);
    assert_eq!(exact.get(w1).unwrap().data(), &[0.0; 6]);
    // Pass-through at the ReLU: dx = W2 W1 = [3*1 + 5*-1, 3*0 + 5*1, 3*1 + 5*2] = [-2, 5, 13].
    assert_eq!(custom.get(x).unwrap().data(), &[-2.0, 5.0, 13.0]);
    // Signals above the swapped node are identical in both walks.
    assert_eq!(custom.get(a).unwrap().data(), exact.get(a).unwrap().data());
    // The forward values are untouched by either walk.
    let after: Vec<Tensor> = tape.nodes().iter().map(|n| n.value.clone()).collect();
    assert_eq!(before, after);
    Ok(())
}

#[test]
fn inference_tapes_skip_weight_gradients() -> Result<()> {
    let mut tape = Tape::for_inference();
    let x = tape.leaf(t(&[1.0, 2.0], &[1, 2]));
    let w = tape.param(t(&[1.0, 1.0], &[1, 2]), "w");
    let y = tape.linear(x, w, None)?;
    let s = tape.backward(y, &Tensor::ones(&[1, 1]), &Exact)?;
    assert!(
        s.get(w).is_none(),
        "a parameter of an inference tape got a signal"
    );
    assert_eq!(s.get(x).unwrap().data(), &[1.0, 1.0]);
    Ok(())
}

#[test]
fn bad_calls_are_errors_naming_the_op_and_shapes() {
    let mut tape = Tape::new();
    let x = tape.leaf(Tensor::zeros(&[2, 3, 8, 8]));
    let w = tape.leaf(Tensor::zeros(&[4, 2, 3, 3]));
    let msg = tape
        .conv2d(x, w, None, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("conv2d") && msg.contains("[2, 3, 8, 8]") && msg.contains("[4, 2, 3, 3]"),
        "{msg}"
    );
    let msg = tape.matmul(x, w).unwrap_err().to_string();
    assert!(msg.contains("matmul"), "{msg}");
    assert!(tape.relu(99).is_err());
    let y = tape.relu(x).unwrap();
    assert!(tape.backward(y, &Tensor::ones(&[3]), &Exact).is_err());
}

#[test]
fn rerun_with_reevaluates_only_dependent_nodes() -> Result<()> {
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, 2.0], &[1, 2]));
    let w1 = tape.param(t(&[1.0, 1.0, 1.0, -1.0], &[2, 2]), "w1");
    let w2 = tape.param(t(&[2.0, 3.0], &[1, 2]), "w2");
    let h = tape.linear(x, w1, None)?; // [3, -1]
    let y = tape.linear(h, w2, None)?; // 6 - 3 = 3
    let dual = tape.rerun_with(&[(w2, t(&[-2.0, -3.0], &[1, 2]))])?;
    assert_eq!(dual.value(y)?.data(), &[-3.0]);
    assert_eq!(dual.value(h)?.data(), tape.value(h)?.data());
    assert_eq!(
        tape.value(y)?.data(),
        &[3.0],
        "the original tape is untouched"
    );
    assert!(
        tape.rerun_with(&[(h, t(&[0.0, 0.0], &[1, 2]))]).is_err(),
        "only leaves can be replaced"
    );
    Ok(())
}

#[test]
fn edit_turns_a_node_into_a_constant_and_moves_a_label() -> Result<()> {
    use relprop_core::{Edit, Op};
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, 2.0], &[1, 2]));
    let w = tape.param(t(&[1.0, 1.0, 1.0, -1.0], &[2, 2]), "w");
    let h = tape.linear(x, w, None)?; // [3, -1]
    tape.set_label(h, "layer")?;
    let y = tape.relu(h)?; // [3, 0]
    let s = tape.sum(y, &[1], false)?; // 3
                                       // `h` becomes a bias `[2]` and `y` the layer with that bias: same ids, new values.
    let edited = tape.edit(&[
        Edit::Constant(h, t(&[-1.0, 4.0], &[2])),
        Edit::Op(y, Op::Linear { x, w, b: Some(h) }),
        Edit::Label(h, None),
        Edit::Label(y, Some("layer".into())),
    ])?;
    assert_eq!(edited.len(), tape.len());
    assert!(matches!(
        edited.node(h)?.op,
        Op::Leaf {
            requires_grad: false
        }
    ));
    assert!(!edited.node(h)?.tracks());
    assert_eq!(edited.value(y)?.data(), &[2.0, 3.0]);
    assert_eq!(edited.value(s)?.data(), &[5.0]);
    assert_eq!(edited.find("layer"), Some(y));
    // The constant receives no signal; the weight still does.
    let g = edited.grad(s)?;
    assert!(g.all()[h].is_none());
    assert_eq!(g.all()[w].as_ref().unwrap().data(), &[1.0, 2.0, 1.0, 2.0]);
    // Reading a later node, or leaving a consumer that cannot take the new shape, fails.
    assert!(tape.edit(&[Edit::Op(h, Op::Relu(y))]).is_err());
    assert!(tape
        .edit(&[Edit::Constant(x, t(&[1.0, 2.0, 3.0], &[1, 3]))])
        .is_err());
    assert_eq!(
        tape.value(y)?.data(),
        &[3.0, 0.0],
        "the original tape is untouched"
    );
    Ok(())
}
