//! Training recipes: how each zoo model is trained, reproducibly from a seed.
//!
//! Single-digit models train on the 8,000 training digits with affine augmentation, Adam
//! and a cosine learning-rate decay; `multidigit` trains on fresh two-digit composites of
//! training digits with soft targets 0.5/0.5 on the two present classes.

use crate::arch::{Architecture, Model};
use crate::augment::{random_affine, AffineRange};
use crate::digits::{self, Split, PIXELS, SIDE};
use crate::pairs::DigitPairGenerator;
use relprop_core::{Error, Result, Rng, Tensor};
use relprop_nn::io::TrainingMeta;
use relprop_nn::train::{predict, train_epoch, EpochStats, Labels};
use relprop_nn::{Adam, Optimizer};
use std::io::Write;

/// How one architecture is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Passes over the data (for `multidigit`: blocks of `steps_per_epoch` batches).
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Adam's base learning rate, annealed by a cosine schedule.
    pub lr: f32,
    /// Random affine augmentation of single digits.
    pub augment: bool,
    /// Batches per epoch for composite training.
    pub steps_per_epoch: usize,
}

/// The documented recipe of an architecture.
pub fn recipe(arch: Architecture) -> Recipe {
    let single = |epochs| Recipe {
        epochs,
        batch_size: 64,
        lr: 1e-3,
        augment: true,
        steps_per_epoch: 125,
    };
    match arch {
        Architecture::Mlp => single(30),
        Architecture::Lenet5 => single(60),
        Architecture::VggSmall => single(25),
        Architecture::VggSmallBn => single(20),
        Architecture::ResnetSmall => single(20),
        // Published ImageNet weights: `train` refuses it; no recipe exists here.
        Architecture::EfficientnetLite0 => single(0),
        Architecture::Multidigit => Recipe {
            epochs: 36,
            batch_size: 64,
            lr: 1e-3,
            augment: false,
            steps_per_epoch: 125,
        },
    }
}

/// Seed of the 2,000 held-out composites `multidigit` is evaluated on.
pub const TEST_COMPOSITE_SEED: u64 = 2024;
/// Number of held-out composites.
pub const TEST_COMPOSITES: usize = 2000;

/// A trained model with its metadata and per-epoch history.
pub struct Trained {
    /// The model.
    pub model: Model,
    /// What to store in the checkpoint.
    pub meta: TrainingMeta,
    /// One entry per epoch.
    pub history: Vec<EpochStats>,
}

fn data_error(e: digits::DigitsError) -> Error {
    Error::invalid("digits", e.to_string())
}

/// Trains `arch` from `seed` with its recipe (or `epochs` instead of the recipe's count),
/// printing one line per epoch unless `quiet`, then measures held-out accuracy.
pub fn train(arch: Architecture, seed: u64, epochs: Option<usize>, quiet: bool) -> Result<Trained> {
    if !arch.is_embedded() {
        return Err(Error::invalid(
            "train",
            format!("{arch} is an ImageNet model with published weights; it is not trained here"),
        ));
    }
    let mut r = recipe(arch);
    if let Some(e) = epochs {
        r.epochs = e;
    }
    let digits = digits::load().map_err(data_error)?;
    let mut model = arch.build(seed);
    let mut opt = Adam::new(r.lr);
    let train_idx = digits.train_indices();
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut history = Vec::new();
    for epoch in 0..r.epochs {
        opt.set_lr(relprop_nn::cosine_lr(r.lr, epoch, r.epochs));
        let batches: Vec<(Tensor, Labels)> = if arch == Architecture::Multidigit {
            composite_batches(digits, &r, seed.wrapping_add(epoch as u64 * 7919))?
        } else {
            let mut order = train_idx.clone();
            rng.shuffle(&mut order);
            digit_batches(digits, &order, &r, &mut rng)?
        };
        let stats = train_epoch(&mut model, &mut opt, batches, quiet)?;
        if !quiet {
            // Progress lines are best effort: a closed stdout must not stop the training.
            let _ = writeln!(
                std::io::stdout(),
                "{arch} epoch {}/{}  lr {:.2e}  {stats}",
                epoch + 1,
                r.epochs,
                opt.lr()
            );
        }
        history.push(stats);
    }
    let accuracy = held_out_accuracy(&model)?;
    let data = match arch {
        Architecture::Multidigit => "bundled MNIST digits: two-digit composites of the 8,000 training digits; held out: 2,000 test composites (top-2)",
        _ => "bundled MNIST digits: 8,000 training digits with affine augmentation; held out: 2,000 test digits",
    };
    let meta = TrainingMeta {
        data: data.into(),
        epochs: r.epochs as u32,
        seed,
        held_out_accuracy: Some(accuracy),
        notes: format!("Adam lr {} with cosine decay, batch {}", r.lr, r.batch_size),
    };
    Ok(Trained {
        model,
        meta,
        history,
    })
}

/// Shuffled, optionally augmented batches of single training digits.
fn digit_batches(
    digits: &digits::Digits,
    order: &[usize],
    r: &Recipe,
    rng: &mut Rng,
) -> Result<Vec<(Tensor, Labels)>> {
    let range = AffineRange::default();
    order
        .chunks(r.batch_size)
        .map(|idx| {
            let mut data = Vec::with_capacity(idx.len() * PIXELS);
            for &i in idx {
                let img = digits.image_f32(i);
                if r.augment {
                    data.extend(random_affine(&img, SIDE, &range, rng));
                } else {
                    data.extend(img);
                }
            }
            let labels = idx.iter().map(|&i| digits.label(i)).collect();
            Ok((
                Tensor::from_vec(data, &[idx.len(), 1, SIDE, SIDE])?,
                Labels::Classes(labels),
            ))
        })
        .collect()
}

/// Fresh composites of training digits with soft targets 0.5/0.5.
fn composite_batches(
    digits: &digits::Digits,
    r: &Recipe,
    seed: u64,
) -> Result<Vec<(Tensor, Labels)>> {
    let mut gen = DigitPairGenerator::new(digits, Split::Train, seed);
    (0..r.steps_per_epoch)
        .map(|_| {
            let batch = gen.batch(r.batch_size);
            let (x, _) = composite_tensor(&batch)?;
            let mut soft = vec![0.0f32; batch.len() * 10];
            for (i, c) in batch.iter().enumerate() {
                for &l in &c.labels {
                    soft[i * 10 + l] = 0.5;
                }
            }
            Ok((x, Labels::Soft(Tensor::from_vec(soft, &[batch.len(), 10])?)))
        })
        .collect()
}

/// Stacks composites into an `[n, 1, 56, 56]` tensor, with their label pairs.
pub fn composite_tensor(batch: &[crate::pairs::DigitPair]) -> Result<(Tensor, Vec<[usize; 2]>)> {
    let side = crate::pairs::CANVAS;
    let data: Vec<f32> = batch.iter().flat_map(|c| c.image.iter().copied()).collect();
    Ok((
        Tensor::from_vec(data, &[batch.len(), 1, side, side])?,
        batch.iter().map(|c| c.labels).collect(),
    ))
}

/// The 2,000 test digits as `[2000, 1, 28, 28]` and their labels.
pub fn test_digits() -> Result<(Tensor, Vec<usize>)> {
    let digits = digits::load().map_err(data_error)?;
    let (data, labels) = digits.batch_f32(&digits.test_indices());
    Ok((
        Tensor::from_vec(data, &[labels.len(), 1, SIDE, SIDE])?,
        labels,
    ))
}

/// Held-out accuracy: on the 2,000 test digits, or for `multidigit` the share of the 2,000
/// test composites whose two classes are exactly its top-2 predictions.
pub fn held_out_accuracy(model: &Model) -> Result<f32> {
    if model.arch == Architecture::Multidigit {
        let digits = digits::load().map_err(data_error)?;
        let batch = DigitPairGenerator::new(digits, Split::Test, TEST_COMPOSITE_SEED)
            .batch(TEST_COMPOSITES);
        let (x, labels) = composite_tensor(&batch)?;
        let logits = predict(model, &x, 200)?;
        let hits = logits
            .data()
            .chunks(10)
            .zip(&labels)
            .filter(|(row, l)| {
                let mut order: Vec<usize> = (0..10).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                l.contains(&order[0]) && l.contains(&order[1])
            })
            .count();
        return Ok(hits as f32 / labels.len() as f32);
    }
    let (x, labels) = test_digits()?;
    relprop_nn::train::evaluate(model, &x, &labels, 250)
}
