//! Every op's backward pass against finite differences, over random shapes (proptest).
//!
//! Inputs are kept away from kinks (ReLU at 0, ties in max pooling) so the central
//! difference never straddles a point where the derivative jumps.

// Inputs are cloned into fresh slices for readability; the copies are tiny.
#![allow(clippy::cloned_ref_to_slice_refs)]

use proptest::prelude::*;
use relprop_core::{
    gradcheck, Conv2dSpec, CustomOp, GradcheckOptions, NodeId, NormStats, Op, Pool2dSpec, Result,
    Tape, Tensor,
};

const CASES: u32 = 64;

fn opts(seed: u64) -> GradcheckOptions {
    GradcheckOptions {
        seed,
        ..GradcheckOptions::default()
    }
}

/// Uniform in [-1, 1] but never within `margin` of 0.
fn away_from_zero(shape: &[usize], margin: f32, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, -1.0, 1.0, seed).map(|v| v.signum() * (margin + v.abs()))
}

/// Distinct values in [-1, 1], at least `2 / n` apart: no ties for max pooling.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut order: Vec<usize> = (0..n).collect();
    relprop_core::Rng::new(seed).shuffle(&mut order);
    let data = order
        .iter()
        .map(|&k| -1.0 + 2.0 * k as f32 / n.max(1) as f32)
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

fn check(f: impl Fn(&mut Tape, &[NodeId]) -> Result<NodeId>, inputs: &[Tensor], seed: u64) {
    if let Err(e) = gradcheck(f, inputs, opts(seed)) {
        panic!(
            "{e}; input shapes {:?}",
            inputs
                .iter()
                .map(|t| t.shape().to_vec())
                .collect::<Vec<_>>()
        );
    }
}

/// A base shape and two operand shapes that broadcast to it, in either direction.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        prop::collection::vec(1usize..4, 1..4),
        prop::collection::vec(any::<(bool, bool)>(), 4),
        0usize..3,
        0usize..3,
    )
        .prop_map(|(base, ones, drop_a, drop_b)| {
            let mut a = base.clone();
            let mut b = base.clone();
            for (i, (oa, ob)) in ones.iter().take(base.len()).enumerate() {
                if *oa {
                    a[i] = 1;
                }
                if *ob && !*oa {
                    b[i] = 1;
                }
            }
            let a = a[drop_a.min(a.len() - 1)..].to_vec();
            let b = b[drop_b.min(b.len() - 1)..].to_vec();
            (a, b)
        })
}

type Binary = fn(&mut Tape, NodeId, NodeId) -> Result<NodeId>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn broadcasting_binary_ops((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let ops: [(&str, Binary); 4] = [
            ("add", |t, a, b| t.add(a, b)),
            ("sub", |t, a, b| t.sub(a, b)),
            ("mul", |t, a, b| t.mul(a, b)),
            ("div", |t, a, b| t.div(a, b)),
        ];
        for (k, (_, op)) in ops.iter().enumerate() {
            let a = Tensor::rand_uniform(&sa, -1.0, 1.0, seed);
            // Divisors stay away from 0 so 1/b is smooth over the step.
            let b = away_from_zero(&sb, 0.5, seed ^ 1);
            check(|t, x| op(t, x[0], x[1]), &[a, b], seed.wrapping_add(k as u64));
        }
    }

    #[test]
    fn unary_ops(shape in prop::collection::vec(1usize..5, 1..4), seed in any::<u64>()) {
        let x = away_from_zero(&shape, 0.1, seed);
        let pos = x.abs();
        let unary: [(Op, &Tensor); 9] = [
            (Op::Neg(0), &x), (Op::AddScalar(0, 0.7), &x), (Op::MulScalar(0, -1.3), &x),
            (Op::Relu(0), &x), (Op::Exp(0), &x), (Op::Ln(0), &pos), (Op::Tanh(0), &x),
            (Op::Sigmoid(0), &x), (Op::Softmax { x: 0, axis: shape.len() - 1 }, &x),
        ];
        for (op, input) in unary {
            let name = op.name().to_string();
            let r = gradcheck(|t, ids| { let mut op = op.clone(); relabel(&mut op, ids[0]); t.record(op) }, &[input.clone()], opts(seed));
            prop_assert!(r.is_ok(), "{name}: {:?}", r.err());
        }
        check(|t, ids| t.log_softmax(ids[0], 0), &[x.clone()], seed);
    }

    #[test]
    fn reductions_and_layout(shape in prop::collection::vec(1usize..5, 1..5), pick in any::<u64>(), keepdim in any::<bool>(), seed in any::<u64>()) {
        let rank = shape.len();
        let axes: Vec<usize> = (0..rank).filter(|i| pick >> i & 1 == 1).collect();
        let x = Tensor::rand_uniform(&shape, -1.0, 1.0, seed);
        check(|t, ids| t.sum(ids[0], &axes, keepdim), &[x.clone()], seed);
        check(|t, ids| t.mean(ids[0], &axes, keepdim), &[x.clone()], seed);
        let mut perm: Vec<usize> = (0..rank).collect();
        relprop_core::Rng::new(pick).shuffle(&mut perm);
        check(|t, ids| t.record(Op::Permute { x: ids[0], perm: perm.clone() }), &[x.clone()], seed);
        check(|t, ids| t.flatten(ids[0], 0), &[x.clone()], seed);
        let cond = Tensor::rand_uniform(&shape, 0.0, 1.0, pick).map(|v| (v > 0.5) as u8 as f32);
        let y = Tensor::rand_uniform(&shape[1..], -1.0, 1.0, seed ^ 3);
        check(|t, ids| { let c = t.constant(cond.clone()); t.record(Op::Where { cond: c, a: ids[0], b: ids[1] }) }, &[x.clone(), y], seed);
    }

    #[test]
    fn matmul_and_linear(m in 1usize..7, k in 1usize..7, n in 1usize..7, batch in 1usize..4, seed in any::<u64>()) {
        let a = Tensor::rand_uniform(&[m, k], -1.0, 1.0, seed);
        let b = Tensor::rand_uniform(&[k, n], -1.0, 1.0, seed ^ 1);
        check(|t, x| t.matmul(x[0], x[1]), &[a.clone(), b.clone()], seed);
        let a3 = Tensor::rand_uniform(&[batch, m, k], -1.0, 1.0, seed ^ 2);
        let b3 = Tensor::rand_uniform(&[batch, k, n], -1.0, 1.0, seed ^ 3);
        check(|t, x| t.matmul(x[0], x[1]), &[a3.clone(), b3], seed);
        check(|t, x| t.matmul(x[0], x[1]), &[a3, b], seed);
        let w = Tensor::rand_uniform(&[n, k], -1.0, 1.0, seed ^ 4);
        let bias = Tensor::rand_uniform(&[n], -1.0, 1.0, seed ^ 5);
        check(|t, x| t.linear(x[0], x[1], Some(x[2])), &[a, w, bias], seed);
    }

    #[test]
    fn conv2d(n in 1usize..3, c in 1usize..4, o in 1usize..4, h in 1usize..8, w in 1usize..8,
              kh in 1usize..4, kw in 1usize..4, sh in 1usize..3, sw in 1usize..3,
              ph in 0usize..3, pw in 0usize..3, bias in any::<bool>(), seed in any::<u64>()) {
        prop_assume!(h + 2 * ph >= kh && w + 2 * pw >= kw);
        let spec = Conv2dSpec::new(1, 0).with_stride([sh, sw]).with_pads([ph, pw], [ph, pw]);
        let mut inputs = vec![
            Tensor::rand_uniform(&[n, c, h, w], -1.0, 1.0, seed),
            Tensor::rand_uniform(&[o, c, kh, kw], -1.0, 1.0, seed ^ 1),
        ];
        if bias { inputs.push(Tensor::rand_uniform(&[o], -1.0, 1.0, seed ^ 2)); }
        check(|t, x| t.conv2d(x[0], x[1], x.get(2).copied(), spec), &inputs, seed);
    }

    #[test]
    fn conv2d_general(n in 1usize..3, groups in 1usize..4, cig in 1usize..3, cog in 1usize..3,
                      h in 1usize..8, w in 1usize..8, kh in 1usize..4, kw in 1usize..4,
                      sh in 1usize..3, sw in 1usize..3, dh in 1usize..3, dw in 1usize..3,
                      pads in proptest::array::uniform4(0usize..3), bias in any::<bool>(),
                      seed in any::<u64>()) {
        // Grouped (depthwise when cig == 1), dilated, asymmetrically padded convolutions.
        prop_assume!(dh * (kh - 1) < h + pads[0] + pads[2] && dw * (kw - 1) < w + pads[1] + pads[3]);
        let spec = Conv2dSpec::new(1, 0)
            .with_stride([sh, sw])
            .with_pads([pads[0], pads[1]], [pads[2], pads[3]])
            .with_dilation([dh, dw])
            .with_groups(groups);
        let (c, o) = (groups * cig, groups * cog);
        let mut inputs = vec![
            Tensor::rand_uniform(&[n, c, h, w], -1.0, 1.0, seed),
            Tensor::rand_uniform(&[o, cig, kh, kw], -1.0, 1.0, seed ^ 1),
        ];
        if bias { inputs.push(Tensor::rand_uniform(&[o], -1.0, 1.0, seed ^ 2)); }
        check(|t, x| t.conv2d(x[0], x[1], x.get(2).copied(), spec), &inputs, seed);
    }

    #[test]
    fn pooling(n in 1usize..3, c in 1usize..3, h in 1usize..8, w in 1usize..8, k in 1usize..4, s in 1usize..4, p in 0usize..2, seed in any::<u64>()) {
        prop_assume!(2 * p <= k && h + 2 * p >= k && w + 2 * p >= k);
        let spec = Pool2dSpec::new(k, s, p);
        let x = distinct(&[n, c, h, w], seed);
        // Steps small against the gap between distinct values, so no winner changes.
        let gap = 2.0 / (n * c * h * w) as f32;
        let small = GradcheckOptions { step: gap / 16.0, tolerance: 2e-3, seed };
        let r = gradcheck(|t, ids| t.max_pool2d(ids[0], spec), &[x.clone()], small);
        prop_assert!(r.is_ok(), "max_pool2d {spec:?}: {:?}", r.err());
        check(|t, ids| t.avg_pool2d(ids[0], spec), &[x], seed);
        let rect = Pool2dSpec { kernel: [k, 1], stride: [s, 1], padding: [p, 0] };
        check(|t, ids| t.avg_pool2d(ids[0], rect), &[Tensor::rand_uniform(&[n, c, h, w], -1.0, 1.0, seed)], seed);
    }

    #[test]
    fn batch_norm(n in 1usize..4, c in 1usize..4, h in 1usize..4, w in 1usize..4, seed in any::<u64>()) {
        prop_assume!(n * h * w >= 3);
        // Batch statistics make the map strongly curved when a channel's values sit close
        // together, so use distinct values and a small step for the training-mode check.
        let x = distinct(&[n, c, h, w], seed);
        let gamma = Tensor::rand_uniform(&[c], 0.5, 1.5, seed ^ 1);
        let beta = Tensor::rand_uniform(&[c], -1.0, 1.0, seed ^ 2);
        let small = GradcheckOptions { step: 2e-4, ..opts(seed) };
        let r = gradcheck(|t, i| t.batch_norm2d_train(i[0], i[1], i[2], 1e-5), &[x.clone(), gamma.clone(), beta.clone()], small);
        prop_assert!(r.is_ok(), "batch_norm2d (train): {:?}", r.err());
        let stats = NormStats { mean: Tensor::rand_uniform(&[c], -0.5, 0.5, seed ^ 3), var: Tensor::rand_uniform(&[c], 0.5, 2.0, seed ^ 4), eps: 1e-5, from_batch: false };
        check(|t, i| t.batch_norm2d(i[0], i[1], i[2], stats.clone()), &[x, gamma, beta], seed);
    }

    #[test]
    fn custom_op(shape in prop::collection::vec(1usize..5, 1..3), seed in any::<u64>()) {
        let x = Tensor::rand_uniform(&shape, -1.0, 1.0, seed);
        check(|t, ids| t.custom(Cube, &[ids[0]]), &[x], seed);
    }
}

/// Points a single-input op at the leaf id the gradcheck recorded.
fn relabel(op: &mut Op, id: NodeId) {
    match op {
        Op::Neg(x)
        | Op::AddScalar(x, _)
        | Op::MulScalar(x, _)
        | Op::Relu(x)
        | Op::Exp(x)
        | Op::Ln(x)
        | Op::Tanh(x)
        | Op::Sigmoid(x)
        | Op::Softmax { x, .. } => *x = id,
        _ => unreachable!("only single-input ops are relabelled"),
    }
}

/// `x^3`, a custom op with a hand-written VJP.
struct Cube;
impl CustomOp for Cube {
    fn name(&self) -> &str {
        "cube"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Ok(inputs[0].map(|v| v * v * v))
    }
    fn backward(&self, inputs: &[&Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(&inputs[0].map(|v| 3.0 * v * v))?)])
    }
}

#[test]
fn gradcheck_catches_a_wrong_derivative() {
    // A custom op that claims d(x^3)/dx = 2x^2 must fail the check: the oracle has teeth.
    struct WrongCube;
    impl CustomOp for WrongCube {
        fn name(&self) -> &str {
            "wrong_cube"
        }
        fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
            Ok(inputs[0].map(|v| v * v * v))
        }
        fn backward(
            &self,
            inputs: &[&Tensor],
            _: &Tensor,
            g: &Tensor,
        ) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g.mul(&inputs[0].map(|v| 2.0 * v * v))?)])
        }
    }
    let x = Tensor::rand_uniform(&[3, 4], -1.0, 1.0, 5);
    assert!(gradcheck(|t, ids| t.custom(WrongCube, &[ids[0]]), &[x], opts(1)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The ops an imported CNN adds: leaky ReLU, clamp (ReLU6), concatenation, zero padding.
    #[test]
    fn activations_concat_and_pad(shape in prop::collection::vec(1usize..5, 1..4), pick in any::<u64>(), seed in any::<u64>()) {
        // Away from the kinks at 0 and at the clamp bounds (-0.5, 0.6).
        let x = away_from_zero(&shape, 0.05, seed).map(|v| if (v + 0.5).abs() < 0.05 || (v - 0.6).abs() < 0.05 { v + 0.15 } else { v });
        check(|t, ids| t.leaky_relu(ids[0], 0.1), &[x.clone()], seed);
        check(|t, ids| t.clamp(ids[0], -0.5, 0.6), &[x.clone()], seed);
        let rank = shape.len();
        let axis = (pick as usize) % rank;
        let mut other = shape.clone();
        other[axis] = 1 + (pick as usize >> 8) % 3;
        let y = Tensor::rand_uniform(&other, -1.0, 1.0, seed ^ 9);
        check(|t, ids| t.concat(&[ids[0], ids[1], ids[0]], axis), &[x.clone(), y], seed);
        let before: Vec<usize> = (0..rank).map(|i| (pick >> (2 * i)) as usize % 3).collect();
        let after: Vec<usize> = (0..rank).map(|i| (pick >> (2 * i + 16)) as usize % 2).collect();
        check(|t, ids| t.pad(ids[0], &before, &after), &[x.clone()], seed);
    }
}
