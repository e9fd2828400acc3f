//! SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the input.

use super::{gradients_in_chunks, Batch, MAX_STEPS};
use relprop_core::{Error, Result, Rng, Tensor};
use relprop_nn::Module;

/// The mean, over `samples` noisy copies `x + N(0, sigma^2)` of each sample, of the gradient
/// of the target logit, with `sigma = noise * (max(x_i) - min(x_i))` per sample (`noise`
/// itself when the sample is constant).
///
/// The noise comes from one generator seeded with `seed` and drawn sample by sample, copy
/// by copy, element by element, so the result is deterministic. `noise = 0` gives the plain
/// gradient. Errors when `samples` is 0 or above [`MAX_STEPS`], `noise` is negative or not finite, or the batch
/// and targets do not match.
pub fn smoothgrad(
    model: &dyn Module,
    x: &Tensor,
    t: &[usize],
    samples: usize,
    noise: f32,
    seed: u64,
) -> Result<Tensor> {
    const OP: &str = "smoothgrad";
    let batch = Batch::check(OP, x, t)?;
    if samples == 0 || samples > MAX_STEPS {
        return Err(Error::invalid(
            OP,
            format!("samples must be between 1 and {MAX_STEPS}, not {samples}"),
        ));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Error::invalid(
            OP,
            format!("the noise level must be finite and non-negative, not {noise}"),
        ));
    }
    let per = batch.per;
    let sigma: Vec<f32> = x
        .data()
        .chunks(per)
        .map(|xi| {
            let (lo, hi) = xi
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let range = hi - lo;
            // A constant image has no range to scale by: the noise level is the sigma.
            if range > 0.0 && range.is_finite() {
                noise * range
            } else {
                noise
            }
        })
        .collect();

    let mut rng = Rng::new(seed);
    let mut acc = vec![0.0f64; x.numel()];
    gradients_in_chunks(
        OP,
        model,
        x,
        batch,
        batch.n * samples,
        |row, out| {
            let i = row / samples;
            let s = sigma[i];
            out.extend(x.data()[i * per..(i + 1) * per].iter().map(|&v| {
                // Draw even when sigma is 0 so the stream does not depend on the noise level.
                let z = rng.normal();
                if s == 0.0 {
                    v
                } else {
                    v + s * z
                }
            }));
            t[i]
        },
        |row, g| {
            let i = row / samples;
            for (a, &gv) in acc[i * per..(i + 1) * per].iter_mut().zip(g) {
                *a += gv as f64;
            }
        },
    )?;
    let mean = acc
        .into_iter()
        .map(|a| (a / samples as f64) as f32)
        .collect();
    Tensor::from_vec(mean, x.shape())
}
