//! Evaluation metrics for attribution maps against ground truth, and summary statistics.
//!
//! Localisation (Arras et al. 2022, CLEVR-XAI): pointing game, relevance mass accuracy,
//! relevance rank accuracy. Class discrimination: the correlation between the maps of two
//! classes of the same image. Faithfulness (Samek et al. 2017): area over the perturbation
//! curve when the most relevant pixels are removed first.

/// 1 if the most relevant pixel lies inside the ground truth, else 0 (ties: first pixel).
pub fn pointing_game(map: &[f32], inside: &[bool]) -> f64 {
    let best = map
        .iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > map[b] { i } else { b });
    inside.get(best).copied().unwrap_or(false) as u8 as f64
}

/// Positive relevance inside the ground truth over all positive relevance (0 if none).
pub fn relevance_mass_accuracy(map: &[f32], inside: &[bool]) -> f64 {
    let (mut within, mut total) = (0.0f64, 0.0f64);
    for (&v, &g) in map.iter().zip(inside) {
        let v = v.max(0.0) as f64;
        total += v;
        if g {
            within += v;
        }
    }
    if total > 0.0 {
        within / total
    } else {
        0.0
    }
}

/// Of the `K` most relevant pixels (`K` = ground-truth size), the share inside it. Only
/// pixels with positive relevance can rank: a map that is zero almost everywhere would
/// otherwise be scored by how ties happen to be broken.
pub fn relevance_rank_accuracy(map: &[f32], inside: &[bool]) -> f64 {
    let k = inside.iter().filter(|&&g| g).count();
    if k == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..map.len()).filter(|&i| map[i] > 0.0).collect();
    order.sort_by(|&a, &b| map[b].total_cmp(&map[a]));
    order.iter().take(k).filter(|&&i| inside[i]).count() as f64 / k as f64
}

/// Pearson correlation of two maps (0 when either is constant).
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let (ma, mb) = (
        a.iter().map(|&v| v as f64).sum::<f64>() / n,
        b.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Area over the perturbation curve: the mean drop of the score after each step,
/// `1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k))`, given the scores `f(x_0), ..., f(x_L)`.
pub fn aopc(scores: &[f64]) -> f64 {
    match scores.first() {
        Some(&f0) => scores.iter().map(|&f| f0 - f).sum::<f64>() / scores.len() as f64,
        None => 0.0,
    }
}

/// Mean and the half-width of its 95% confidence interval (normal approximation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanCi {
    /// Sample mean.
    pub mean: f64,
    /// 1.96 standard errors.
    pub half_width: f64,
    /// Number of values.
    pub n: usize,
}

impl MeanCi {
    /// Summarises `values` (NaN values are skipped).
    pub fn of(values: &[f64]) -> MeanCi {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return MeanCi {
                mean: f64::NAN,
                half_width: f64::NAN,
                n,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        MeanCi {
            mean,
            half_width: 1.96 * (var / n as f64).sqrt(),
            n,
        }
    }

    /// `lo..hi` of the interval.
    pub fn interval(&self) -> (f64, f64) {
        (self.mean - self.half_width, self.mean + self.half_width)
    }
}

impl std::fmt::Display for MeanCi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ± {:.3}", self.mean, self.half_width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(n: usize, inside: &[usize]) -> Vec<bool> {
        (0..n).map(|i| inside.contains(&i)).collect()
    }

    #[test]
    fn all_mass_inside_scores_one() {
        let gt = boxed(6, &[1, 2]);
        let map = [0.0, 3.0, 1.0, 0.0, -5.0, 0.0];
        assert_eq!(relevance_mass_accuracy(&map, &gt), 1.0);
        assert_eq!(pointing_game(&map, &gt), 1.0);
        assert_eq!(relevance_rank_accuracy(&map, &gt), 1.0);
    }

    #[test]
    fn hand_computed_partial_scores() {
        let gt = boxed(4, &[0, 1]);
        let map = [1.0, 0.0, 3.0, -2.0];
        // positive mass: 1 inside of 4 total
        assert_eq!(relevance_mass_accuracy(&map, &gt), 0.25);
        // the peak (3.0 at pixel 2) is outside
        assert_eq!(pointing_game(&map, &gt), 0.0);
        // top-2 pixels are 2 and 0: one of two inside
        assert_eq!(relevance_rank_accuracy(&map, &gt), 0.5);
        // zeros do not rank: only pixel 2 is positive, and it is outside
        assert_eq!(relevance_rank_accuracy(&[0.0, 0.0, 3.0, 0.0], &gt), 0.0);
        assert_eq!(relevance_mass_accuracy(&[0.0; 4], &gt), 0.0);
    }

    #[test]
    fn correlation_and_aopc() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        // drops of 0, 1, 3 -> mean 4/3
        assert!((aopc(&[5.0, 4.0, 2.0]) - 4.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn mean_and_interval() {
        let m = MeanCi::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        // sample std = sqrt(5/3); 1.96 * sqrt(5/3) / 2
        assert!((m.half_width - 1.96 * (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
    }
}
