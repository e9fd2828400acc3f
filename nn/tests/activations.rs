//! LeakyRelu, Clamp (ReLU6), Sigmoid and Tanh: hand values, derivatives, labels, describe
//! lines and bad configurations.

use relprop_core::{gradcheck, GradcheckOptions, Op, Tape, Tensor};
use relprop_nn::{Clamp, LeakyRelu, Mode, Module, Sigmoid, Tanh};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

/// Runs `m` on `x` as a leaf; returns the output and d(sum y)/dx.
fn value_and_grad(m: &dyn Module, x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let mut tape = Tape::new();
    let xi = tape.leaf(x.clone());
    let y = m.forward(&mut tape, xi, Mode::Eval).unwrap();
    // One new node on top of the input: the activation itself.
    assert_eq!(tape.len(), 2, "{}", m.describe());
    let g = tape.grad(y).unwrap();
    (
        tape.value(y).unwrap().data().to_vec(),
        g.get(xi).unwrap().data().to_vec(),
    )
}

#[test]
fn leaky_relu_scales_the_negative_side() {
    let x = t(&[-2.0, -0.5, 0.5, 3.0], &[1, 4]);
    let (y, g) = value_and_grad(&LeakyRelu::new(0.1), &x);
    close(&y, &[-0.2, -0.05, 0.5, 3.0], 1e-7);
    assert_eq!(g, [0.1, 0.1, 1.0, 1.0]);

    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let y = LeakyRelu::named("act1", 0.2)
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.find("act1"), Some(y));
    assert!(matches!(tape.node(y).unwrap().op, Op::LeakyRelu(_, s) if s == 0.2));
    let unnamed = LeakyRelu::new(0.2)
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert!(tape.node(unnamed).unwrap().label.is_none());

    assert_eq!(
        LeakyRelu::named("act1", 0.2).describe(),
        "act1: leaky_relu slope=0.2"
    );
    assert_eq!(LeakyRelu::new(0.01).describe(), "leaky_relu slope=0.01");
    assert_eq!(LeakyRelu::new(0.3).slope(), 0.3);

    // A NaN or infinite slope is refused when recorded, naming the layer.
    for slope in [f32::NAN, f32::INFINITY] {
        let e = LeakyRelu::new(slope)
            .forward(&mut tape, xi, Mode::Eval)
            .expect_err("non-finite slope");
        assert!(e.to_string().contains("LeakyRelu"), "{e}");
    }
}

#[test]
fn clamp_and_relu6_cut_at_their_bounds() {
    let x = t(&[-1.0, 3.0, 5.5, 7.0], &[2, 2]);
    let (y, g) = value_and_grad(&Clamp::relu6(), &x);
    assert_eq!(y, [0.0, 3.0, 5.5, 6.0]);
    assert_eq!(g, [0.0, 1.0, 1.0, 0.0]);

    let (y, g) = value_and_grad(&Clamp::new(-0.5, 4.0).unwrap(), &x);
    assert_eq!(y, [-0.5, 3.0, 4.0, 4.0]);
    assert_eq!(g, [0.0, 1.0, 0.0, 0.0]);

    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let y = Clamp::relu6_named("features.0.2")
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.find("features.0.2"), Some(y));
    assert!(matches!(
        tape.node(y).unwrap().op,
        Op::Clamp { min, max, .. } if (min, max) == (0.0, 6.0)
    ));

    assert_eq!(
        Clamp::relu6_named("features.0.2").describe(),
        "features.0.2: relu6"
    );
    assert_eq!(Clamp::relu6().describe(), "relu6");
    assert_eq!(
        Clamp::named("c", -1.0, 1.5).unwrap().describe(),
        "c: clamp -1..1.5"
    );
    let c = Clamp::new(-1.0, 1.5).unwrap();
    assert_eq!((c.min(), c.max()), (-1.0, 1.5));
    // A point interval is allowed (a constant); an empty or NaN one is not.
    assert!(Clamp::new(2.0, 2.0).is_ok());
    for (lo, hi) in [(1.0, 0.0), (f32::NAN, 1.0), (0.0, f32::NAN)] {
        let e = Clamp::named("c", lo, hi).expect_err("not an interval");
        assert!(e.to_string().contains("Clamp"), "{e}");
    }
}

#[test]
fn sigmoid_and_tanh_have_hand_values_and_derivatives() {
    // sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; derivative s (1 - s).
    let l3 = 3f32.ln();
    let x = t(&[0.0, l3, -l3], &[1, 3]);
    let (y, g) = value_and_grad(&Sigmoid::new(), &x);
    close(&y, &[0.5, 0.75, 0.25], 1e-6);
    close(&g, &[0.25, 0.1875, 0.1875], 1e-6);

    // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6; derivative 1 - tanh^2.
    let l2 = 2f32.ln();
    let x = t(&[0.0, l2, -l2], &[3, 1]);
    let (y, g) = value_and_grad(&Tanh::new(), &x);
    close(&y, &[0.0, 0.6, -0.6], 1e-6);
    close(&g, &[1.0, 0.64, 0.64], 1e-6);

    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let s = Sigmoid::named("gate")
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    let h = Tanh::named("act")
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.find("gate"), Some(s));
    assert_eq!(tape.find("act"), Some(h));
    assert!(matches!(tape.node(s).unwrap().op, Op::Sigmoid(_)));
    assert!(matches!(tape.node(h).unwrap().op, Op::Tanh(_)));
    assert_eq!(Sigmoid::named("gate").describe(), "gate: sigmoid");
    assert_eq!(Tanh::new().describe(), "tanh");
    assert_eq!(Tanh::named("act").name(), Some("act"));
}

#[test]
fn activations_match_finite_differences() {
    // Away from the kinks of leaky ReLU and clamp, so the central difference is smooth.
    let x = Tensor::rand_uniform(&[2, 3, 2, 2], -4.0, 8.0, 5).map(|v| {
        if (v.abs() < 0.1) || ((v - 6.0).abs() < 0.1) {
            v + 0.3
        } else {
            v
        }
    });
    let modules: Vec<Box<dyn Module>> = vec![
        Box::new(LeakyRelu::new(0.05)),
        Box::new(Clamp::relu6()),
        Box::new(Sigmoid::new()),
        Box::new(Tanh::new()),
    ];
    for m in &modules {
        let opts = GradcheckOptions {
            step: 1e-3,
            ..GradcheckOptions::default()
        };
        let r = gradcheck(
            |tape, ids| m.forward(tape, ids[0], Mode::Eval),
            std::slice::from_ref(&x),
            opts,
        );
        assert!(r.is_ok(), "{}: {r:?}", m.describe());
    }
}
