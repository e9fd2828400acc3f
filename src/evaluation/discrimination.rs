//! Class discrimination on two-digit composites, explained with `multidigit`.

use super::{method, sample_map};
use crate::core::Result;
use crate::explain::metrics::{
    correlation, pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, MeanCi,
};
use crate::explain::{explain, Targets};
use crate::nn::Module;
use crate::zoo::digits::{Digits, Split};
use crate::zoo::pairs::{DigitPair, DigitPairGenerator, CANVAS};
use crate::zoo::training::composite_tensor;

/// The methods of the discrimination table, in table order.
pub const DISCRIMINATION_METHODS: [&str; 10] = [
    "gradient",
    "gradient-x-input",
    "integrated-gradients",
    "grad-cam",
    "lrp-epsilon-plus",
    "lrp-bounded-deep-taylor",
    "clrp1",
    "clrp2",
    "sglrp",
    "sglrp-two-pass",
];

/// One method's scores over all explanations (two per composite).
#[derive(Clone, Debug)]
pub struct DiscriminationRow {
    /// Method name.
    pub method: String,
    /// Most relevant pixel inside the target digit's box.
    pub pointing: MeanCi,
    /// Positive relevance inside the box over all positive relevance.
    pub mass: MeanCi,
    /// Share of the top-784 pixels inside the box.
    pub rank: MeanCi,
    /// Correlation between the maps of the two classes of a composite (one per composite).
    pub correlation: MeanCi,
}

/// Scores `methods` on `n` test composites from `seed`, explaining both present classes.
/// `progress` is called after each batch with the number of composites done.
pub fn discrimination(
    model: &dyn Module,
    digits: &Digits,
    n: usize,
    seed: u64,
    methods: &[&str],
    mut progress: impl FnMut(usize),
) -> Result<Vec<DiscriminationRow>> {
    const BATCH: usize = 50;
    let mut gen = DigitPairGenerator::new(digits, Split::Test, seed);
    let composites: Vec<DigitPair> = gen.batch(n);
    let methods: Vec<(&str, crate::explain::Method)> = methods
        .iter()
        .map(|&m| Ok((m, method(m)?)))
        .collect::<Result<_>>()?;
    let mut scores = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; methods.len()];
    for (done, chunk) in composites.chunks(BATCH).enumerate() {
        let (x, _) = composite_tensor(chunk)?;
        for ((_, m), s) in methods.iter().zip(scores.iter_mut()) {
            let mut maps = [Vec::new(), Vec::new()];
            for (k, maps_k) in maps.iter_mut().enumerate() {
                let targets = Targets::PerSample(chunk.iter().map(|c| c.labels[k]).collect());
                let r = explain(model, &x, &targets, m)?.relevance;
                for (i, c) in chunk.iter().enumerate() {
                    let map = sample_map(&r, i);
                    let inside: Vec<bool> = (0..CANVAS * CANVAS)
                        .map(|p| c.boxes[k].contains(p / CANVAS, p % CANVAS))
                        .collect();
                    s[0].push(pointing_game(&map, &inside));
                    s[1].push(relevance_mass_accuracy(&map, &inside));
                    s[2].push(relevance_rank_accuracy(&map, &inside));
                    maps_k.push(map);
                }
            }
            for (a, b) in maps[0].iter().zip(&maps[1]) {
                s[3].push(correlation(a, b));
            }
        }
        progress((done * BATCH + chunk.len()).min(n));
    }
    Ok(methods
        .iter()
        .zip(scores)
        .map(|((name, _), s)| DiscriminationRow {
            method: name.to_string(),
            pointing: MeanCi::of(&s[0]),
            mass: MeanCi::of(&s[1]),
            rank: MeanCi::of(&s[2]),
            correlation: MeanCi::of(&s[3]),
        })
        .collect())
}
