//! Every layer's output shape, a hand-computed value, and its labels on the tape.

use relprop_core::{Conv2dSpec, Op, Rng, Tape, Tensor};
use relprop_nn::{
    AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, MaxPool2d, Mode,
    Module, Relu, Residual, Sequential,
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

#[test]
fn linear_is_one_labelled_node_with_hand_value() {
    let w = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    let lin = Linear::from_params("classifier.fc", w, Some(t(&[0.5, -0.5, 0.0], &[3]))).unwrap();
    let mut tape = Tape::new();
    let x = tape.constant(t(&[1.0, 1.0, 2.0, 0.0], &[2, 2]));
    let y = lin.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[2, 3]);
    close(
        tape.value(y).unwrap().data(),
        &[3.5, 6.5, 11.0, 2.5, 5.5, 10.0],
        0.0,
    );
    // x, weight, bias, and ONE linear node.
    assert_eq!(tape.len(), 4);
    assert!(matches!(tape.node(y).unwrap().op, Op::Linear { .. }));
    assert_eq!(tape.find("classifier.fc"), Some(y));
    assert!(tape.find("classifier.fc.weight").is_some());
    assert!(tape.find("classifier.fc.bias").is_some());
    assert_eq!(lin.describe(), "classifier.fc: linear 2->3");
    assert!(Linear::from_params("f", t(&[1.0; 6], &[3, 2]), Some(t(&[0.0; 2], &[2]))).is_err());
}

#[test]
fn linear_default_init_is_seeded_and_bounded() {
    let a = Linear::new("fc", 16, 8, true, &mut Rng::new(3));
    let b = Linear::new("fc", 16, 8, true, &mut Rng::new(3));
    assert_eq!(a.weight, b.weight);
    assert_eq!(a.weight.value.shape(), &[8, 16]);
    assert!(a.weight.value.max_abs() <= 0.25);
    assert!(a.bias.as_ref().unwrap().value.max_abs() <= 0.25);
    let nb = Linear::new("fc", 16, 8, false, &mut Rng::new(3));
    assert!(nb.bias.is_none());
    assert_eq!(nb.params().len(), 1);
}

#[test]
fn conv2d_is_one_labelled_node_with_hand_value() {
    let x = t(
        &(1..=9).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 3, 3],
    );
    let conv = Conv2d::from_params(
        "features.conv1",
        Tensor::ones(&[1, 1, 2, 2]),
        Some(t(&[1.0], &[1])),
        Conv2dSpec::new(1, 0),
    )
    .unwrap();
    let mut tape = Tape::new();
    let xi = tape.constant(x.clone());
    let y = conv.forward(&mut tape, xi, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[1, 1, 2, 2]);
    close(
        tape.value(y).unwrap().data(),
        &[13.0, 17.0, 25.0, 29.0],
        0.0,
    );
    assert_eq!(tape.len(), 4);
    assert!(matches!(tape.node(y).unwrap().op, Op::Conv2d { .. }));
    assert_eq!(tape.find("features.conv1"), Some(y));
    assert_eq!(conv.describe(), "features.conv1: conv2d 1->1 k2 s1 p0");

    // Shape with stride and padding: (3 + 2*1 - 3) / 2 + 1 = 2.
    let c = Conv2d::new(
        "c",
        1,
        4,
        [3, 3],
        Conv2dSpec::new(2, 1),
        true,
        &mut Rng::new(0),
    );
    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let y = c.forward(&mut tape, xi, Mode::Train).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[1, 4, 2, 2]);
    assert!(c.weight.value.max_abs() <= 1.0 / 3.0);
}

/// Channels `lo..hi` of an `[n, c, h, w]` tensor.
fn channels(x: &Tensor, lo: usize, hi: usize) -> Tensor {
    let s = x.shape();
    let plane = s[2] * s[3];
    let data = (0..s[0])
        .flat_map(|n| x.data()[(n * s[1] + lo) * plane..(n * s[1] + hi) * plane].to_vec())
        .collect();
    Tensor::from_vec(data, &[s[0], hi - lo, s[2], s[3]]).unwrap()
}

#[test]
fn grouped_conv2d_is_one_plain_conv_per_group() {
    // A depthwise layer with channel multiplier 2, dilated and asymmetrically padded.
    let spec = Conv2dSpec::new(1, 0)
        .with_pads([1, 0], [2, 1])
        .with_dilation([2, 1])
        .with_groups(3);
    let conv = Conv2d::grouped("dw", 3, 6, [3, 2], spec, true, &mut Rng::new(1)).unwrap();
    assert_eq!(conv.weight.value.shape(), &[6, 1, 3, 2]);
    assert_eq!((conv.in_channels(), conv.out_channels()), (3, 6));
    // PyTorch's fan-in counts one group's channels: 1 * 3 * 2.
    assert!(conv.weight.value.max_abs() <= 1.0 / 6f32.sqrt());
    assert_eq!(conv.describe(), "dw: conv2d 3->6 k3x2 s1 p1x0/2x1 d2x1 g3");

    let x = Tensor::rand_uniform(&[2, 3, 6, 5], -1.0, 1.0, 7);
    let mut tape = Tape::new();
    let xi = tape.constant(x.clone());
    let y = conv.forward(&mut tape, xi, Mode::Eval).unwrap();
    assert!(matches!(tape.node(y).unwrap().op, Op::Conv2d { .. }));
    assert_eq!(tape.find("dw"), Some(y));
    let y = tape.value(y).unwrap();
    // Group g: input channel g, output channels 2g..2g+2, as a one-group convolution.
    let one = Conv2dSpec { groups: 1, ..spec };
    let (w, b) = (&conv.weight.value, &conv.bias.as_ref().unwrap().value);
    for g in 0..3 {
        let w_g = Tensor::from_vec(w.data()[g * 12..(g + 1) * 12].to_vec(), &[2, 1, 3, 2]).unwrap();
        let b_g = Tensor::from_vec(b.data()[2 * g..2 * g + 2].to_vec(), &[2]).unwrap();
        let want = channels(&x, g, g + 1)
            .conv2d(&w_g, Some(&b_g), &one)
            .unwrap();
        close(channels(y, 2 * g, 2 * g + 2).data(), want.data(), 1e-5);
    }

    // from_params reads the groups from the spec; inconsistent groups are errors.
    let c = Conv2d::from_params(
        "g",
        Tensor::ones(&[6, 2, 3, 3]),
        None,
        Conv2dSpec::new(1, 1).with_groups(3),
    )
    .unwrap();
    assert_eq!(c.in_channels(), 6);
    assert_eq!(c.describe(), "g: conv2d 6->6 k3 s1 p1 g3 no-bias");
    assert!(Conv2d::from_params(
        "g",
        Tensor::ones(&[4, 2, 3, 3]),
        None,
        Conv2dSpec::new(1, 1).with_groups(3)
    )
    .is_err());
    assert!(Conv2d::from_params(
        "g",
        Tensor::ones(&[4, 2, 3, 3]),
        None,
        Conv2dSpec::new(1, 1).with_groups(0)
    )
    .is_err());
    assert!(Conv2d::grouped(
        "g",
        4,
        6,
        [3, 3],
        Conv2dSpec::new(1, 1).with_groups(4),
        true,
        &mut Rng::new(0)
    )
    .is_err());
    assert!(Conv2d::grouped(
        "g",
        4,
        6,
        [3, 3],
        Conv2dSpec::new(1, 1).with_groups(0),
        true,
        &mut Rng::new(0)
    )
    .is_err());
    // The layer's input must match the groups: 4 channels into a 6-channel layer.
    let mut tape = Tape::new();
    let xi = tape.constant(Tensor::zeros(&[1, 4, 5, 5]));
    assert!(c.forward(&mut tape, xi, Mode::Eval).is_err());
}

#[test]
fn relu_labels_only_when_named() {
    let mut tape = Tape::new();
    let x = tape.constant(t(&[-1.0, 0.0, 2.0], &[1, 3]));
    let a = Relu::new().forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(a).unwrap().data(), &[0.0, 0.0, 2.0]);
    assert!(tape.node(a).unwrap().label.is_none());
    let b = Relu::named("act")
        .forward(&mut tape, x, Mode::Eval)
        .unwrap();
    assert_eq!(tape.find("act"), Some(b));
    assert!(matches!(tape.node(b).unwrap().op, Op::Relu(_)));
}

#[test]
fn pools_and_flatten_have_hand_values() {
    let x = t(
        &(0..16).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 4, 4],
    );
    let mut tape = Tape::new();
    let xi = tape.constant(x);

    let m = MaxPool2d::new("pool1", 2, 2, 0)
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.value(m).unwrap().shape(), &[1, 1, 2, 2]);
    assert_eq!(tape.value(m).unwrap().data(), &[5.0, 7.0, 13.0, 15.0]);
    assert_eq!(tape.find("pool1"), Some(m));

    let a = AvgPool2d::new("pool2", 2, 2, 0)
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.value(a).unwrap().data(), &[2.5, 4.5, 10.5, 12.5]);
    assert!(matches!(tape.node(a).unwrap().op, Op::AvgPool2d { .. }));

    let f = Flatten::new().forward(&mut tape, a, Mode::Eval).unwrap();
    assert_eq!(tape.value(f).unwrap().shape(), &[1, 4]);
    let g = Flatten::named("flat")
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap();
    assert_eq!(tape.value(g).unwrap().shape(), &[1, 16]);
    assert_eq!(tape.find("flat"), Some(g));
}

#[test]
fn global_avg_pool_is_one_avg_pool_node_and_a_reshape() {
    // [2, 3, 2, 2]: channel (i, c) holds 4 values whose mean is 10*i + c + 1.5.
    let data: Vec<f32> = (0..2)
        .flat_map(|i| (0..3).flat_map(move |c| (0..4).map(move |k| (10 * i + c + k) as f32)))
        .collect();
    let mut tape = Tape::new();
    let x = tape.constant(t(&data, &[2, 3, 2, 2]));
    let gap = GlobalAvgPool::new("avgpool");
    let y = gap.forward(&mut tape, x, Mode::Eval).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[2, 3]);
    close(
        tape.value(y).unwrap().data(),
        &[1.5, 2.5, 3.5, 11.5, 12.5, 13.5],
        1e-6,
    );
    let pooled = tape.find("avgpool").unwrap();
    assert!(matches!(
        tape.node(pooled).unwrap().op,
        Op::AvgPool2d { .. }
    ));
    assert_eq!(tape.value(pooled).unwrap().shape(), &[2, 3, 1, 1]);
    assert!(matches!(tape.node(y).unwrap().op, Op::Reshape { x, .. } if x == pooled));
    assert_eq!(tape.len(), 3);
}

#[test]
fn dropout_is_identity_in_eval_and_drops_about_p_in_train() {
    let p = 0.3;
    let d = Dropout::new("drop", p, 42).unwrap();
    let x = Tensor::full(&[100, 100], 2.0);
    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let before = tape.len();
    assert_eq!(d.forward(&mut tape, xi, Mode::Eval).unwrap(), xi);
    assert_eq!(tape.len(), before, "eval records nothing");

    let y = d.forward(&mut tape, xi, Mode::Train).unwrap();
    assert!(matches!(tape.node(y).unwrap().op, Op::Mul(..)));
    assert_eq!(tape.find("drop"), Some(y));
    let v = tape.value(y).unwrap().data().to_vec();
    let zeros = v.iter().filter(|&&a| a == 0.0).count() as f32 / v.len() as f32;
    assert!((zeros - p).abs() < 0.02, "dropped fraction {zeros}");
    assert!(v
        .iter()
        .all(|&a| a == 0.0 || (a - 2.0 / (1.0 - p)).abs() < 1e-5));
    // The mean is preserved in expectation.
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    assert!((mean - 2.0).abs() < 0.06, "mean {mean}");
    // A second call draws a different mask; a fresh layer with the same seed repeats it.
    let y2 = d.forward(&mut tape, xi, Mode::Train).unwrap();
    assert_ne!(tape.value(y2).unwrap(), tape.value(y).unwrap());
    let again = Dropout::new("drop", p, 42).unwrap();
    let y3 = again.forward(&mut tape, xi, Mode::Train).unwrap();
    assert_eq!(tape.value(y3).unwrap(), tape.value(y).unwrap());
    assert!(Dropout::new("d", 1.5, 0).is_err());
}

fn identity_linear(name: &str, n: usize) -> Linear {
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        w[i * n + i] = 1.0;
    }
    Linear::from_params(name, t(&w, &[n, n]), Some(Tensor::zeros(&[n]))).unwrap()
}

#[test]
fn residual_is_a_plain_add_and_doubles_the_gradient() {
    let block = Residual::new(
        "layer1.0",
        Sequential::new("layer1.0.body").with(identity_linear("layer1.0.fc", 3)),
        None,
    );
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, -2.0, 3.0], &[1, 3]));
    let y = block.forward(&mut tape, x, Mode::Eval).unwrap();
    let node = tape.node(y).unwrap();
    assert!(matches!(node.op, Op::Add(_, b) if b == x));
    assert_eq!(tape.find("layer1.0"), Some(y));
    assert_eq!(tape.value(y).unwrap().data(), &[2.0, -4.0, 6.0]);
    let g = tape.grad(y).unwrap();
    assert_eq!(g.get(x).unwrap().data(), &[2.0, 2.0, 2.0]);

    // With a shortcut module, both branches are recorded and params are body then shortcut.
    let block = Residual::new(
        "b",
        Sequential::new("b.body").with(identity_linear("b.fc", 3)),
        Some(Box::new(identity_linear("b.downsample", 3))),
    );
    let names: Vec<&str> = block.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "b.fc.weight",
            "b.fc.bias",
            "b.downsample.weight",
            "b.downsample.bias"
        ]
    );
    let mut tape = Tape::new();
    let x = tape.leaf(t(&[1.0, 1.0, 1.0], &[1, 3]));
    let y = block.forward(&mut tape, x, Mode::Eval).unwrap();
    assert!(matches!(tape.node(y).unwrap().op, Op::Add(..)));
    assert_eq!(tape.grad(y).unwrap().get(x).unwrap().data(), &[2.0; 3]);
    assert!(block.describe().contains("shortcut:"));
}

#[test]
fn sequential_enumerates_params_by_full_name_in_order() {
    let mut rng = Rng::new(0);
    let mut model = Sequential::new("")
        .with(Conv2d::new(
            "features.0",
            1,
            2,
            [3, 3],
            Conv2dSpec::new(1, 1),
            true,
            &mut rng,
        ))
        .with(BatchNorm2d::new("features.1", 2))
        .with(Relu::named("features.2"))
        .with(MaxPool2d::new("features.3", 2, 2, 0))
        .with(Flatten::new())
        .with(Linear::new("classifier.0", 8, 5, true, &mut rng))
        .with(Dropout::new("classifier.1", 0.5, 1).unwrap())
        .with(Linear::new("classifier.2", 5, 3, false, &mut rng));
    let names: Vec<String> = model.params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        [
            "features.0.weight",
            "features.0.bias",
            "features.1.weight",
            "features.1.bias",
            "features.1.running_mean",
            "features.1.running_var",
            "classifier.0.weight",
            "classifier.0.bias",
            "classifier.2.weight",
        ]
    );
    let trainable: Vec<bool> = model.params().iter().map(|p| p.trainable).collect();
    assert_eq!(
        trainable,
        [true, true, true, true, false, false, true, true, true]
    );
    let mut_names: Vec<String> = model.params_mut().iter().map(|p| p.name.clone()).collect();
    assert_eq!(mut_names, names);

    let mut tape = Tape::new();
    let x = tape.constant(Tensor::rand_normal(&[2, 1, 4, 4], 0.0, 1.0, 5));
    let y = model.forward(&mut tape, x, Mode::Train).unwrap();
    assert_eq!(tape.value(y).unwrap().shape(), &[2, 3]);
    for label in ["features.0", "features.1", "features.2", "features.3"] {
        assert!(tape.find(label).is_some(), "{label}");
    }
    model.update_running_stats(&tape).unwrap();
    let d = model.describe();
    assert!(d.starts_with("sequential (8 layers)"), "{d}");
    assert!(d.contains("\n  features.0: conv2d 1->2 k3 s1 p1"), "{d}");
    assert!(d.contains("\n  classifier.1: dropout p=0.5"), "{d}");
    assert_eq!(d.lines().count(), 9);
}
