//! Training end to end: losses fall with Adam and SGD, helpers batch correctly.

use relprop_core::{Conv2dSpec, Rng, Tape, Tensor};
use relprop_nn::{
    cross_entropy, evaluate, fit, gather_rows, predict, slice_rows, train_epoch, Adam, BatchNorm2d,
    Conv2d, Dropout, GlobalAvgPool, Labels, Linear, Mode, Module, Optimizer, Relu, Sequential, Sgd,
    TrainConfig,
};

fn mlp(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new("mlp")
        .with(Linear::new("fc1", 8, 32, true, &mut rng))
        .with(Relu::named("relu1"))
        .with(Linear::new("fc2", 32, 4, true, &mut rng))
}

fn data() -> (Tensor, Vec<usize>) {
    let x = Tensor::rand_normal(&[16, 8], 0.0, 1.0, 7);
    let mut rng = Rng::new(8);
    let y = (0..16).map(|_| rng.below(4)).collect();
    (x, y)
}

fn loss_of(model: &dyn Module, x: &Tensor, y: &[usize]) -> f32 {
    let mut tape = Tape::for_inference();
    let xi = tape.constant(x.clone());
    let z = model.forward(&mut tape, xi, Mode::Eval).unwrap();
    let l = cross_entropy(&mut tape, z, y).unwrap();
    tape.value(l).unwrap().item().unwrap()
}

fn train(model: &mut Sequential, opt: &mut dyn Optimizer, steps: usize) -> (f32, f32) {
    let (x, y) = data();
    let before = loss_of(model, &x, &y);
    let batches = std::iter::repeat_with(|| (x.clone(), Labels::Classes(y.clone()))).take(steps);
    let stats = train_epoch(model, opt, batches, true).unwrap();
    assert_eq!(stats.samples, 16 * steps);
    assert!(stats.loss.is_finite() && stats.seconds >= 0.0);
    let after = loss_of(model, &x, &y);
    eprintln!("loss {before:.4} -> {after:.6} in {steps} steps");
    (before, after)
}

#[test]
fn adam_drives_the_loss_down_tenfold() {
    let mut model = mlp(1);
    let (before, after) = train(&mut model, &mut Adam::new(1e-2), 100);
    assert!(after * 10.0 < before, "loss {before} -> {after}");
    let (x, y) = data();
    assert_eq!(evaluate(&model, &x, &y, 5).unwrap(), 1.0);
}

#[test]
fn sgd_with_momentum_decreases_the_loss() {
    let mut model = mlp(2);
    let (before, after) = train(&mut model, &mut Sgd::new(0.05, 0.9, 1e-4), 100);
    assert!(after * 10.0 < before, "loss {before} -> {after}");
}

#[test]
fn soft_targets_train_too() {
    let mut model = mlp(3);
    let (x, y) = data();
    let mut onehot = vec![0.0; 16 * 4];
    for (i, &c) in y.iter().enumerate() {
        onehot[i * 4 + c] = 1.0;
    }
    let soft = Tensor::from_vec(onehot, &[16, 4]).unwrap();
    let before = loss_of(&model, &x, &y);
    let mut opt = Adam::new(1e-2);
    let batches = (0..50).map(|_| (x.clone(), Labels::Soft(soft.clone())));
    train_epoch(&mut model, &mut opt, batches, true).unwrap();
    assert!(loss_of(&model, &x, &y) * 3.0 < before);
    assert_eq!(Labels::Soft(soft).classes().unwrap(), y);
}

#[test]
fn fit_runs_epochs_with_a_cosine_schedule_and_a_conv_net() {
    let mut rng = Rng::new(4);
    let mut model = Sequential::new("cnn")
        .with(Conv2d::new(
            "conv1",
            1,
            4,
            [3, 3],
            Conv2dSpec::new(1, 1),
            false,
            &mut rng,
        ))
        .with(BatchNorm2d::new("bn1", 4))
        .with(Relu::named("relu1"))
        .with(GlobalAvgPool::new("pool"))
        .with(Dropout::new("drop", 0.1, 9).unwrap())
        .with(Linear::new("fc", 4, 2, true, &mut rng));
    // Class 1 images are bright, class 0 dark.
    let x = Tensor::rand_normal(&[8, 1, 5, 5], 0.0, 0.1, 1);
    let y: Vec<usize> = (0..8).map(|i| i % 2).collect();
    let shift: Vec<f32> = (0..8 * 25).map(|k| (k / 25 % 2) as f32).collect();
    let x = x
        .add(&Tensor::from_vec(shift, &[8, 1, 5, 5]).unwrap())
        .unwrap();

    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 4,
        lr: 0.05,
        cosine: true,
        quiet: true,
        ..TrainConfig::default()
    };
    let mut opt = Adam::new(cfg.lr);
    let history = fit(&mut model, &mut opt, &cfg, |epoch| {
        let mut order: Vec<usize> = (0..8).collect();
        Rng::new(cfg.seed + epoch as u64).shuffle(&mut order);
        order
            .chunks(cfg.batch_size)
            .map(|idx| {
                let xb = gather_rows(&x, idx).unwrap();
                let yb = idx.iter().map(|&i| y[i]).collect();
                (xb, Labels::Classes(yb))
            })
            .collect::<Vec<_>>()
    })
    .unwrap();
    assert_eq!(history.len(), 4);
    assert!((opt.lr() - cfg.lr_at(3)).abs() < 1e-9);
    assert!(cfg.lr_at(3) < cfg.lr);
    // Running statistics moved away from their initial values.
    let rm = model
        .params()
        .into_iter()
        .find(|p| p.name == "bn1.running_mean")
        .unwrap();
    assert!(rm.value.max_abs() > 0.0);
    let acc = evaluate(&model, &x, &y, 3).unwrap();
    assert!((0.0..=1.0).contains(&acc));
}

#[test]
fn predict_is_independent_of_batch_size_and_helpers_slice_rows() {
    let model = mlp(5);
    let x = Tensor::rand_normal(&[10, 8], 0.0, 1.0, 2);
    let a = predict(&model, &x, 3).unwrap();
    let b = predict(&model, &x, 100).unwrap();
    assert_eq!(a.shape(), &[10, 4]);
    assert!(a.max_rel_diff(&b).unwrap() < 1e-6);
    let s = slice_rows(&x, 2, 5).unwrap();
    assert_eq!(s.shape(), &[3, 8]);
    assert_eq!(s.data(), &x.data()[16..40]);
    assert!(slice_rows(&x, 5, 11).is_err());
    let g = gather_rows(&x, &[9, 0]).unwrap();
    assert_eq!(&g.data()[..8], &x.data()[72..80]);
    assert!(gather_rows(&x, &[10]).is_err());
    assert!(evaluate(&model, &x, &[0; 3], 4).is_err());
}

#[test]
fn an_empty_epoch_is_an_error() {
    let mut model = mlp(6);
    let mut opt = Adam::new(1e-3);
    let none: Vec<(Tensor, Labels)> = Vec::new();
    assert!(train_epoch(&mut model, &mut opt, none, true).is_err());
}
