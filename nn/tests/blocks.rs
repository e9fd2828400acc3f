//! Concat, Normalize and AdaptiveAvgPool2d: shapes, hand values, labels, describe lines,
//! bad configurations, and their backward passes against finite differences.

use relprop_core::{gradcheck, Conv2dSpec, GradcheckOptions, Op, Rng, Tape, Tensor};
use relprop_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Concat, Conv2d, Linear, Mode, Module, Normalize,
    Relu, Sequential, Tanh,
};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

/// A 1x1 convolution multiplying its single channel by `k`.
fn scale_conv(name: &str, k: f32) -> Conv2d {
    Conv2d::from_params(name, t(&[k], &[1, 1, 1, 1]), None, Conv2dSpec::new(1, 0)).unwrap()
}

#[test]
fn concat_joins_its_branches_along_channels() {
    let block = Concat::new("mixed")
        .with(Sequential::new("mixed.a").with(scale_conv("mixed.a.conv", 2.0)))
        .with(Sequential::new("mixed.b").with(Relu::named("mixed.b.relu")));
    let mut tape = Tape::new();
    let x = tape.constant(t(&[-1.0, 3.0], &[1, 1, 1, 2]));
    let y = block.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[1, 2, 1, 2]);
    // Channel 0: 2x; channel 1: relu(x).
    assert_eq!(tape.value(y).unwrap().data(), &[-2.0, 6.0, 0.0, 3.0]);
    assert_eq!(tape.find("mixed"), Some(y));
    let a = tape.find("mixed.a.conv").unwrap();
    let b = tape.find("mixed.b.relu").unwrap();
    assert!(matches!(
        &tape.node(y).unwrap().op,
        Op::Concat { inputs, axis: 1 } if inputs == &[a, b]
    ));
    assert_eq!(block.branches().len(), 2);
    assert_eq!(block.name(), "mixed");
    assert_eq!(
        block.describe(),
        "mixed: concat (2 branches)\n  branch 0:\n    mixed.a: sequential (1 layers)\n      \
         mixed.a.conv: conv2d 1->1 k1 s1 p0 no-bias\n  branch 1:\n    mixed.b: sequential (1 layers)\n      \
         mixed.b.relu: relu"
    );

    // Flat inputs join along features; parameters come branch by branch.
    let mut rng = Rng::new(1);
    let mut block = Concat::new("heads");
    block.push(Linear::new("heads.0", 3, 2, true, &mut rng));
    block.push_boxed(Box::new(Linear::new("heads.1", 3, 4, false, &mut rng)));
    let names: Vec<&str> = block.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["heads.0.weight", "heads.0.bias", "heads.1.weight"]);
    assert_eq!(block.params_mut().len(), 3);
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[5, 3]));
    let y = block.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[5, 6]);
}

#[test]
fn concat_of_two_identities_doubles_the_gradient() {
    // Empty chains are identities: y = [x, x], so d(sum y)/dx = 2.
    let block = Concat::new("dup")
        .with(Sequential::new("dup.a"))
        .with(Sequential::new("dup.b"));
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, -2.0, 3.0, 0.5], &[1, 2, 1, 2]));
    let y = block.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(
        tape.value(y).unwrap().data(),
        &[1.0, -2.0, 3.0, 0.5, 1.0, -2.0, 3.0, 0.5]
    );
    let g = tape.grad(y).unwrap();
    assert_eq!(g.get(x).unwrap().data(), &[2.0; 4]);
}

#[test]
fn concat_refuses_no_branches_and_mismatched_ones() {
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[1, 1, 4, 4]));
    let e = Concat::new("empty")
        .forward(&mut tape, x, Mode::Eval)
        .expect_err("no branches");
    assert!(
        e.to_string().contains("Concat") && e.to_string().contains("empty"),
        "{e}"
    );

    // One branch halves the plane: shapes differ on an axis other than channels.
    let e = Concat::new("bad")
        .with(Sequential::new("bad.a"))
        .with(AvgPool2d::new("bad.pool", 2, 2, 0))
        .forward(&mut tape, x, Mode::Eval)
        .expect_err("mismatched planes");
    let text = e.to_string();
    assert!(
        text.contains("Concat") && text.contains("bad") && text.contains("[1, 1, 2, 2]"),
        "{text}"
    );
}

#[test]
fn concat_updates_running_stats_of_its_branches() {
    let mut block = Concat::new("c")
        .with(BatchNorm2d::new("c.bn", 1))
        .with(Sequential::new("c.id"));
    let mut tape = Tape::new();
    let x = tape.constant(t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]));
    block.forward(&mut tape, x, Mode::Train).unwrap();
    block.update_running_stats(&tape).unwrap();
    // Batch mean 2.5, momentum 0.1: 0.9 * 0 + 0.1 * 2.5.
    let mean = &block.params()[2];
    assert_eq!(mean.name, "c.bn.running_mean");
    close(mean.value.data(), &[0.25], 1e-6);
}

#[test]
fn normalize_is_a_sub_and_a_div_by_constants() {
    let norm = Normalize::new("normalize", vec![1.0, 2.0], vec![2.0, 0.5]).unwrap();
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, 2.0, 3.0, 5.0], &[1, 2, 1, 2]));
    let y = norm.forward(&mut tape, x, Mode::Eval).unwrap();
    // Channel 0: (x - 1) / 2; channel 1: (x - 2) / 0.5.
    assert_eq!(tape.value(y).unwrap().data(), &[0.0, 0.5, 2.0, 6.0]);
    assert_eq!(tape.find("normalize"), Some(y));
    let Op::Div(centred, std) = tape.node(y).unwrap().op else {
        panic!("not a div: {}", tape.node(y).unwrap().describe());
    };
    let Op::Sub(input, mean) = tape.node(centred).unwrap().op else {
        panic!("not a sub");
    };
    assert_eq!(input, x);
    // Constants: no gradient flows into them, and they are no parameters.
    assert!(!tape.node(mean).unwrap().tracks() && !tape.node(std).unwrap().tracks());
    assert_eq!(tape.value(std).unwrap().shape(), &[1, 2, 1, 1]);
    assert!(norm.params().is_empty());
    // dy/dx = 1 / std of the channel.
    let g = tape.grad(y).unwrap();
    assert_eq!(g.get(x).unwrap().data(), &[0.5, 0.5, 2.0, 2.0]);

    // [N, C] inputs broadcast the same way.
    let mut tape = Tape::new();
    let x = tape.constant(t(&[3.0, 3.0, 5.0, 1.0], &[2, 2]));
    let y = norm.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().data(), &[1.0, 2.0, 2.0, -2.0]);

    assert_eq!(
        norm.describe(),
        "normalize: normalize mean=[1, 2] std=[2, 0.5]"
    );
    assert_eq!(
        (norm.mean(), norm.std(), norm.channels()),
        (&[1.0, 2.0][..], &[2.0, 0.5][..], 2)
    );
}

#[test]
fn normalize_refuses_bad_statistics_and_inputs() {
    let bad = [
        (vec![0.0, 0.0], vec![1.0]),
        (vec![], vec![]),
        (vec![0.0], vec![0.0]),
        (vec![0.0], vec![-1.0]),
        (vec![0.0], vec![f32::NAN]),
        (vec![f32::INFINITY], vec![1.0]),
    ];
    for (mean, std) in bad {
        let e = Normalize::new("n", mean.clone(), std.clone())
            .expect_err(&format!("mean {mean:?} std {std:?}"));
        assert!(e.to_string().contains("Normalize"), "{e}");
    }
    let norm = Normalize::new("n", vec![0.5; 3], vec![0.25; 3]).unwrap();
    let mut tape = Tape::new();
    for shape in [&[2, 2, 4, 4][..], &[3]] {
        let x = tape.constant(Tensor::ones(shape));
        let e = norm
            .forward(&mut tape, x, Mode::Eval)
            .expect_err("wrong channels");
        let text = e.to_string();
        assert!(
            text.contains("Normalize") && text.contains("[N, 3, ...]"),
            "{text}"
        );
    }
}

#[test]
fn adaptive_avg_pool_averages_equal_blocks() {
    let x = t(
        &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 4, 4],
    );
    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let pool = AdaptiveAvgPool2d::new("avgpool", [2, 2]);
    let y = pool.forward(&mut tape, xi, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[1, 1, 2, 2]);
    // Means of the 2x2 blocks: (1+2+5+6)/4, (3+4+7+8)/4, ...
    assert_eq!(tape.value(y).unwrap().data(), &[3.5, 5.5, 11.5, 13.5]);
    assert_eq!(tape.find("avgpool"), Some(y));
    assert!(matches!(tape.node(y).unwrap().op, Op::AvgPool2d { .. }));
    assert_eq!(tape.len(), 2);

    // [1, 2]: two 4x2 windows, (1+2+5+6+9+10+13+14)/8 and (3+4+...+16)/8.
    let y = AdaptiveAvgPool2d::new("p", [1, 2])
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.value(y).unwrap().data(), &[7.5, 9.5]);
    // The identity size is allowed.
    let y = AdaptiveAvgPool2d::new("same", [4, 4])
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.value(y).unwrap(), tape.value(xi).unwrap());

    assert_eq!(pool.describe(), "avgpool: adaptive_avg_pool2d 2x2");
    assert_eq!(pool.output_size(), [2, 2]);
    let spec = pool.spec_for(6, 4).unwrap();
    assert_eq!(
        (spec.kernel, spec.stride, spec.padding),
        ([3, 2], [3, 2], [0, 0])
    );
}

#[test]
fn adaptive_avg_pool_refuses_sizes_that_do_not_divide() {
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[1, 1, 4, 4]));
    for size in [[3, 3], [0, 1], [8, 4], [2, 3]] {
        let e = AdaptiveAvgPool2d::new("head.pool", size)
            .forward(&mut tape, x, Mode::Eval)
            .expect_err(&format!("{size:?}"));
        let text = e.to_string();
        assert!(
            text.contains("AdaptiveAvgPool2d")
                && text.contains("head.pool")
                && text.contains("[4, 4]"),
            "{text}"
        );
    }
    let flat = tape.constant(Tensor::ones(&[2, 4]));
    let e = AdaptiveAvgPool2d::new("p", [1, 1])
        .forward(&mut tape, flat, Mode::Eval)
        .expect_err("rank 2");
    assert!(e.to_string().contains("[N, C, H, W]"), "{e}");
}

fn opts(seed: u64) -> GradcheckOptions {
    GradcheckOptions {
        seed,
        ..GradcheckOptions::default()
    }
}

#[test]
fn composed_blocks_match_finite_differences() {
    let mut rng = Rng::new(7);
    let x = Tensor::rand_uniform(&[2, 3, 6, 4], -1.0, 1.0, 3);

    let norm = Normalize::new("n", vec![0.4, -0.1, 0.2], vec![0.3, 1.5, 0.8]).unwrap();
    // Smooth branches (no kinks): a grouped conv then tanh; pooling then a 1x1 conv; and
    // the identity.
    let dw = Conv2dSpec::new(1, 1).with_groups(3);
    let block = Concat::new("mix")
        .with(
            Sequential::new("mix.a")
                .with(Conv2d::grouped("mix.a.conv", 3, 6, [3, 3], dw, true, &mut rng).unwrap())
                .with(Tanh::named("mix.a.tanh")),
        )
        .with(
            Sequential::new("mix.b")
                .with(AvgPool2d::new("mix.b.pool", 3, 1, 1))
                .with(Conv2d::new(
                    "mix.b.conv",
                    3,
                    2,
                    [1, 1],
                    Conv2dSpec::new(1, 0),
                    false,
                    &mut rng,
                )),
        )
        .with(Sequential::new("mix.c"));
    let pool = AdaptiveAvgPool2d::new("pool", [3, 2]);
    let whole = Sequential::new("")
        .with(norm.clone())
        .with(Concat::new("again").with(Sequential::new("again.id")))
        .with(pool.clone());

    let cases: [(&str, &dyn Module); 4] = [
        ("normalize", &norm),
        ("concat", &block),
        ("adaptive pool", &pool),
        ("normalize, concat, pool", &whole),
    ];
    for (seed, (what, m)) in cases.into_iter().enumerate() {
        let r = gradcheck(
            |tape, ids| m.forward(tape, ids[0], Mode::Eval),
            std::slice::from_ref(&x),
            opts(seed as u64),
        );
        assert!(r.is_ok(), "{what}: {r:?}");
    }
}
