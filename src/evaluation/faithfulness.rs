//! Faithfulness on single digits: pixel flipping, most relevant first, on `lenet5`.

use super::{method, sample_map};
use crate::core::{Result, Rng, Tensor};
use crate::explain::metrics::{aopc, MeanCi};
use crate::explain::{explain, Targets};
use crate::nn::train::predict;
use crate::nn::Module;

/// The methods of the faithfulness table; `random` is the random-order baseline.
pub const FAITHFULNESS_METHODS: [&str; 8] = [
    "random",
    "gradient",
    "gradient-x-input",
    "integrated-gradients",
    "lrp-epsilon-plus",
    "lrp-bounded-deep-taylor",
    "sglrp",
    "clrp1",
];

/// Pixels removed per perturbation step.
pub const PIXELS_PER_STEP: usize = 4;
/// Perturbation steps (4 x 50 = 200 pixels, about a quarter of the image).
pub const STEPS: usize = 50;

/// One method's AOPC (target logit) over the digits.
#[derive(Clone, Debug)]
pub struct FaithfulnessRow {
    /// Method name.
    pub method: String,
    /// Area over the perturbation curve, per digit.
    pub aopc: MeanCi,
}

/// Removes pixels (sets them to 0) in order of decreasing relevance, `PIXELS_PER_STEP` at a
/// time, and records the target logit after each step; returns the AOPC per method.
pub fn faithfulness(
    model: &dyn Module,
    x: &Tensor,
    labels: &[usize],
    methods: &[&str],
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<Vec<FaithfulnessRow>> {
    let (n, per) = (x.shape()[0], x.numel() / x.shape()[0].max(1));
    let targets = Targets::PerSample(labels.to_vec());
    let mut rows = Vec::new();
    for (done, &name) in methods.iter().enumerate() {
        // Most relevant first; the random baseline shuffles instead.
        let orders: Vec<Vec<usize>> = if name == "random" {
            let mut rng = Rng::new(seed);
            (0..n)
                .map(|_| {
                    let mut o: Vec<usize> = (0..per).collect();
                    rng.shuffle(&mut o);
                    o
                })
                .collect()
        } else {
            let r = explain(model, x, &targets, &method(name)?)?.relevance;
            (0..n)
                .map(|i| {
                    let map = sample_map(&r, i);
                    let mut o: Vec<usize> = (0..per).collect();
                    o.sort_by(|&a, &b| map[b].total_cmp(&map[a]));
                    o
                })
                .collect()
        };
        let mut current = x.data().to_vec();
        let mut curves = vec![Vec::with_capacity(STEPS + 1); n];
        for step in 0..=STEPS {
            if step > 0 {
                for (i, order) in orders.iter().enumerate() {
                    for &p in &order[(step - 1) * PIXELS_PER_STEP..step * PIXELS_PER_STEP] {
                        current[i * per + p] = 0.0;
                    }
                }
            }
            let logits = predict(model, &Tensor::from_vec(current.clone(), x.shape())?, 500)?;
            for (i, curve) in curves.iter_mut().enumerate() {
                curve.push(logits.data()[i * 10 + labels[i]] as f64);
            }
        }
        let values: Vec<f64> = curves.iter().map(|c| aopc(c)).collect();
        rows.push(FaithfulnessRow {
            method: name.to_string(),
            aopc: MeanCi::of(&values),
        });
        progress(done + 1);
    }
    Ok(rows)
}
