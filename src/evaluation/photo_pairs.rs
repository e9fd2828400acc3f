//! Class discrimination on real photos: two bundled photos side by side in one 224x448
//! input, explained with `efficientnet_lite0` for each photo's class.
//!
//! The SGLRP paper's claim, measured: a map for class t should lie on the half that shows
//! t. Every ordered pair of the bundled photos is used (each photo once on the left, once
//! on the right, so a bias towards one side cannot pass for discrimination), and each
//! composite is explained for the class the model gives each photo on its own.

use super::{method, sample_map};
use crate::core::{Error, Result, Tensor};
use crate::explain::metrics::{
    correlation, pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, MeanCi,
};
use crate::explain::{explain, Targets};
use crate::nn::train::predict;
use crate::nn::Module;
use crate::zoo::photos::{prepare, side_by_side, CROP, PHOTOS};

use super::DiscriminationRow;

/// The methods of the photo table, in table order.
pub const PHOTO_METHODS: [&str; 5] = [
    "gradient",
    "lrp-epsilon-plus",
    "lrp-bounded-deep-taylor",
    "clrp1",
    "sglrp",
];

/// Composites explained per batch (memory: each is two photos' worth of activations).
const BATCH: usize = 4;

/// The bundled photos prepared as model inputs, with the class the model gives each.
pub struct PreparedPhotos {
    /// `[3, 224, 224]` values in [0, 1], in [`PHOTOS`] order.
    pub crops: Vec<Vec<f32>>,
    /// The model's top-1 class of each photo on its own.
    pub classes: Vec<usize>,
}

/// Decodes, resizes and crops the bundled photos and classifies each.
pub fn prepare_photos(model: &dyn Module) -> Result<PreparedPhotos> {
    let crops = PHOTOS
        .iter()
        .map(|p| prepare(p.jpeg).map_err(|e| Error::invalid("photos", format!("{}: {e}", p.name))))
        .collect::<Result<Vec<_>>>()?;
    let x = Tensor::from_vec(crops.concat(), &[crops.len(), 3, CROP, CROP])?;
    let classes = predict(model, &x, BATCH)?.argmax(1)?;
    Ok(PreparedPhotos { crops, classes })
}

/// Every ordered pair `(left, right)` of distinct photos whose classes differ.
pub fn ordered_pairs(photos: &PreparedPhotos) -> Vec<(usize, usize)> {
    let n = photos.crops.len();
    (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .filter(|&(i, j)| i != j && photos.classes[i] != photos.classes[j])
        .collect()
}

/// The composite of photos `left` and `right`: `[1, 3, 224, 448]`.
pub fn composite(photos: &PreparedPhotos, left: usize, right: usize) -> Result<Tensor> {
    let data = side_by_side(&photos.crops[left], &photos.crops[right], CROP);
    Tensor::from_vec(data, &[1, 3, CROP, 2 * CROP])
}

/// Scores `methods` on every ordered pair of bundled photos, explaining each composite for
/// both photos' classes; the correct region of class k is its photo's half. `progress` is
/// called after each batch with the number of composites done.
pub fn photo_discrimination(
    model: &dyn Module,
    methods: &[&str],
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<DiscriminationRow>> {
    let photos = prepare_photos(model)?;
    let pairs = ordered_pairs(&photos);
    let methods: Vec<_> = methods
        .iter()
        .map(|&m| Ok((m, method(m)?)))
        .collect::<Result<_>>()?;
    let (h, w) = (CROP, 2 * CROP);
    let halves: [Vec<bool>; 2] = [
        (0..h * w).map(|p| p % w < CROP).collect(),
        (0..h * w).map(|p| p % w >= CROP).collect(),
    ];
    let mut scores = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; methods.len()];
    for (done, chunk) in pairs.chunks(BATCH).enumerate() {
        let data: Vec<f32> = chunk
            .iter()
            .flat_map(|&(l, r)| side_by_side(&photos.crops[l], &photos.crops[r], CROP))
            .collect();
        let x = Tensor::from_vec(data, &[chunk.len(), 3, h, w])?;
        for ((_, m), s) in methods.iter().zip(scores.iter_mut()) {
            let mut maps = [Vec::new(), Vec::new()];
            for (k, maps_k) in maps.iter_mut().enumerate() {
                let side = |&(l, r): &(usize, usize)| if k == 0 { l } else { r };
                let targets =
                    Targets::PerSample(chunk.iter().map(|p| photos.classes[side(p)]).collect());
                let rel = explain(model, &x, &targets, m)?.relevance;
                for i in 0..chunk.len() {
                    let map = sample_map(&rel, i);
                    s[0].push(pointing_game(&map, &halves[k]));
                    s[1].push(relevance_mass_accuracy(&map, &halves[k]));
                    s[2].push(relevance_rank_accuracy(&map, &halves[k]));
                    maps_k.push(map);
                }
            }
            for (a, b) in maps[0].iter().zip(&maps[1]) {
                s[3].push(correlation(a, b));
            }
        }
        progress((done * BATCH + chunk.len()).min(pairs.len()), pairs.len());
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
