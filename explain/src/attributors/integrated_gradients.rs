//! Integrated Gradients (Sundararajan et al. 2017) from a constant baseline.

use super::{gradients_in_chunks, Batch, MAX_STEPS};
use relprop_core::{Error, Result, Tensor};
use relprop_nn::Module;

/// `(x - b) * mean_{k=1..steps} grad(b + k/steps (x - b))`: the right Riemann sum of the path
/// integral of the target logit's gradient along the straight line from the constant
/// baseline `b` to `x`.
///
/// By completeness the map sums to about `logit_t(x) - logit_t(b)`, closer as `steps`
/// grows. All path points of all samples are stacked and evaluated in chunks. Errors when
/// `steps` is 0 or above [`MAX_STEPS`], the baseline is not finite, or the batch and targets do not match.
pub fn integrated_gradients(
    model: &dyn Module,
    x: &Tensor,
    t: &[usize],
    steps: usize,
    baseline: f32,
) -> Result<Tensor> {
    const OP: &str = "integrated-gradients";
    let batch = Batch::check(OP, x, t)?;
    if steps == 0 || steps > MAX_STEPS {
        return Err(Error::invalid(
            OP,
            format!("steps must be between 1 and {MAX_STEPS}, not {steps}"),
        ));
    }
    if !baseline.is_finite() {
        return Err(Error::invalid(
            OP,
            format!("the baseline must be finite, not {baseline}"),
        ));
    }
    let per = batch.per;
    let b = baseline;
    let mut acc = vec![0.0f64; x.numel()];
    gradients_in_chunks(
        OP,
        model,
        x,
        batch,
        batch.n * steps,
        |row, out| {
            let (i, k) = (row / steps, row % steps + 1);
            // k == steps gives alpha exactly 1, so the last point is x itself (for b = 0).
            let alpha = k as f32 / steps as f32;
            out.extend(
                x.data()[i * per..(i + 1) * per]
                    .iter()
                    .map(|&v| b + alpha * (v - b)),
            );
            t[i]
        },
        |row, g| {
            let i = row / steps;
            for (a, &gv) in acc[i * per..(i + 1) * per].iter_mut().zip(g) {
                *a += gv as f64;
            }
        },
    )?;
    let ig = x
        .data()
        .iter()
        .zip(acc)
        .map(|(&v, a)| ((v - b) as f64 * a / steps as f64) as f32)
        .collect();
    Tensor::from_vec(ig, x.shape())
}
