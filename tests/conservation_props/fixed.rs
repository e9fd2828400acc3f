//! Fixed cases next to the random ones: typical networks, printing, batch independence.

use relprop::core::Tensor;
use relprop::explain::{explain, Method, Seed, Targets};
use relprop::nn::{Linear, Sequential};

use crate::arch::*;
use crate::flows::*;
/// The sign-rule properties are not vacuous: on a network with non-negative inputs and
/// weights of both signs, their conditions hold at (most) affine layers and are checked.
#[test]
fn sign_rule_conditions_apply_on_a_typical_network() {
    let arch = Arch::new(
        [2, 1, 8, 8],
        true,
        &[
            Token::Conv {
                out: 4,
                k: 3,
                stride: 1,
                pad: 1,
                bn: false,
            },
            Token::Relu,
            Token::Residual { k: 3 },
            Token::Relu,
            Token::MaxPool,
            Token::Linear { out: 8 },
            Token::Relu,
        ],
        3,
        (11, 12),
    );
    let checked = check_sign_rule(&arch, &zplus(), 1.0, 0.0).unwrap();
    assert!(
        checked >= 4,
        "ZPlus was checked at only {checked} (layer, sample) pairs{arch:?}"
    );
    let checked = check_sign_rule(&arch, &alpha_beta(2.0, 1.0), 2.0, 1.0).unwrap();
    assert!(
        checked >= 4,
        "AlphaBeta was checked at only {checked} (layer, sample) pairs{arch:?}"
    );
}

/// A failing case names its layers readably.
#[test]
fn architectures_print_readably() {
    let arch = Arch::new(
        [1, 1, 6, 6],
        false,
        &[
            Token::Conv {
                out: 3,
                k: 3,
                stride: 1,
                pad: 1,
                bn: true,
            },
            Token::Relu,
            Token::MaxPool,
            Token::Residual { k: 1 },
        ],
        2,
        (1, 2),
    );
    let text = format!("{arch:?}");
    assert!(
        text.contains("conv 1->3 k3 s1 p1, batchnorm 3, relu, maxpool 2, residual(conv 3->3 k1 p0")
            && text.contains("flatten 27, linear 27->2"),
        "{text}"
    );
}

/// Explaining a batch must give each sample the map it gets alone. With zero biases it does
/// for every composite (a property below); with biases it is a known failure (see
/// `zplus_relevance_does_not_depend_on_the_batch`).
pub(crate) fn batch_independence(arch: &Arch, bias: Bias) -> Result<(), String> {
    let model = arch.model(bias);
    let x = arch.x();
    let n = arch.input[0];
    let per = x.numel() / n;
    let mut composites = builtin_composites();
    composites.extend([zplus(), alpha_beta(2.0, 1.0)]);
    for composite in composites {
        let m = Method::Lrp {
            composite: composite.clone(),
            seed: Seed::OneHot,
        };
        let batch = explain(&model, &x, &Targets::Class(0), &m)
            .unwrap()
            .relevance;
        for i in 0..n {
            let mut shape = x.shape().to_vec();
            shape[0] = 1;
            let xi = Tensor::from_vec(x.data()[i * per..(i + 1) * per].to_vec(), &shape).unwrap();
            let alone = explain(&model, &xi, &Targets::Class(0), &m)
                .unwrap()
                .relevance;
            let part =
                Tensor::from_vec(batch.data()[i * per..(i + 1) * per].to_vec(), &shape).unwrap();
            let e = alone.max_rel_diff(&part).unwrap();
            if e > 1e-4 {
                return Err(format!(
                    "{}: sample {i} alone and in the batch differ by {e:.3e}{arch:?}",
                    composite.name
                ));
            }
        }
    }
    Ok(())
}

/// Networks whose hidden layers see all-negative inputs for some samples (no ReLU after
/// the first layer), in batches mixing such samples with others.
pub(crate) fn mixed_sign_archs() -> Vec<Arch> {
    (0..16u64)
        .map(|k| {
            Arch::new(
                [3, 1, 6, 6],
                k % 2 == 0,
                &[
                    Token::Conv {
                        out: 2,
                        k: 3,
                        stride: 1,
                        pad: 0,
                        bn: false,
                    },
                    Token::Linear { out: 3 },
                    Token::Linear { out: 3 },
                    Token::Relu,
                ],
                3,
                (100 + k, 200 + k),
            )
        })
        .collect()
}

/// Known bug, reported (explain/src/rules/affine.rs is owned elsewhere): `Affine::
/// modified_input` skips an x+ or x- branch when that part is zero over the WHOLE BATCH,
/// and the skipped branch takes its bias part (b+ for ZPlus, b+ and b- for AlphaBeta,
/// Gamma's boosted bias) out of the denominator. A sample whose layer input has no
/// positive value then gets `z = W-x-` alone but `z = W-x- + b+` in a batch with any
/// other sample: its map depends on the batch. Minimal case: one linear layer
/// `W = [[1, -1], [-0.5, 2]]`, `b = [1, 1]`, ZPlus, class 0, `x = [-1, -2]` gives
/// `[0, 1]` alone and `[0, 0.667]` (Zennit's value) next to `x = [1, 1]`.
#[test]
fn zplus_relevance_does_not_depend_on_the_batch() {
    let l = Linear::from_params(
        "fc",
        Tensor::from_vec(vec![1.0, -1.0, -0.5, 2.0], &[2, 2]).unwrap(),
        Some(Tensor::from_vec(vec![1.0, 1.0], &[2]).unwrap()),
    )
    .unwrap();
    let net = Sequential::new("").with(l);
    let m = Method::Lrp {
        composite: zplus(),
        seed: Seed::OneHot,
    };
    let x = |v: Vec<f32>, n| Tensor::from_vec(v, &[n, 2]).unwrap();
    let alone = explain(&net, &x(vec![-1.0, -2.0], 1), &Targets::Class(0), &m)
        .unwrap()
        .relevance;
    let batched = explain(
        &net,
        &x(vec![-1.0, -2.0, 1.0, 1.0], 2),
        &Targets::Class(0),
        &m,
    )
    .unwrap()
    .relevance;
    assert!(
        (alone.data()[1] - batched.data()[1]).abs() < 1e-6,
        "alone {alone:?}, batched {batched:?}"
    );
    for arch in mixed_sign_archs() {
        batch_independence(&arch, Bias::Random).unwrap();
    }
}
