//! Finite-difference gradient checking, reusable by every crate's tests.
//!
//! For a function `f` recorded on a tape, pick a random cotangent `u` (for the output) and a
//! random direction `v_i` (for each input). Reverse mode gives `<J^T u, v>`; the directional
//! central difference of `phi(t) = <u, f(x + t v)>` gives the same number numerically:
//! `(phi(h) - phi(-h)) / 2h`, refined by Richardson extrapolation with `h/2` to cancel the
//! `h^2` error term. Dot products are accumulated in f64; the step is chosen for f32.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tape::{Exact, NodeId, Tape};
use crate::tensor::Tensor;

/// Settings of [`gradcheck`].
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step relative to the inputs' largest magnitude (at least 1).
    pub step: f32,
    /// Largest accepted `|analytic - numeric| / scale`.
    pub tolerance: f64,
    /// Seed of the random cotangent and directions.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        // cbrt(f32 epsilon) ~ 5e-3 balances truncation and rounding error for central differences.
        GradcheckOptions {
            step: 4e-3,
            tolerance: 1e-3,
            seed: 0,
        }
    }
}

/// The outcome of one directional check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckReport {
    /// `<J^T u, v>` from the backward walk.
    pub analytic: f64,
    /// The same from finite differences.
    pub numeric: f64,
    /// `sum |J^T u| |v|`: the magnitude against which the difference is judged, so that
    /// cancellation inside the dot product does not make the check impossibly strict.
    pub scale: f64,
    /// The rounding noise the finite difference itself carries: f32 outputs are exact to a
    /// few ulps only, so `phi(h) - phi(-h)` is uncertain by about `eps * sum |u| |f(x)| / h`,
    /// and the moved inputs are rounded too (about `eps * sum |J^T u| |x| / h`).
    pub noise: f64,
}

impl GradcheckReport {
    /// `|analytic - numeric|` relative to `scale`, after granting the finite difference its
    /// own rounding noise.
    pub fn error(&self) -> f64 {
        ((self.analytic - self.numeric).abs() - self.noise).max(0.0) / self.scale.max(1e-12)
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum()
}

/// Checks the backward pass of `f` at `inputs` against finite differences.
///
/// `f` records its computation on the given tape from the given input ids and returns the
/// output id. Returns the report, or an error if the check fails or `f` fails.
pub fn gradcheck<F>(f: F, inputs: &[Tensor], opts: GradcheckOptions) -> Result<GradcheckReport>
where
    F: Fn(&mut Tape, &[NodeId]) -> Result<NodeId>,
{
    let run = |xs: &[Tensor]| -> Result<(Tape, Vec<NodeId>, NodeId)> {
        let mut tape = Tape::new();
        let ids: Vec<NodeId> = xs.iter().map(|x| tape.leaf(x.clone())).collect();
        let out = f(&mut tape, &ids)?;
        Ok((tape, ids, out))
    };
    let (tape, ids, out) = run(inputs)?;
    let mut rng = Rng::new(opts.seed);
    let out_shape = tape.value(out)?.shape().to_vec();
    let u = Tensor::from_vec(
        (0..tape.value(out)?.numel())
            .map(|_| rng.normal())
            .collect(),
        &out_shape,
    )?;
    let dirs: Vec<Tensor> = inputs
        .iter()
        .map(|x| Tensor::from_vec((0..x.numel()).map(|_| rng.normal()).collect(), x.shape()))
        .collect::<Result<_>>()?;

    let signals = tape.backward(out, &u, &Exact)?;
    let (mut analytic, mut scale, mut input_mag) = (0.0f64, 0.0f64, 0.0f64);
    for ((&id, x), v) in ids.iter().zip(inputs).zip(&dirs) {
        let g = signals.get_or_zeros(&tape, id)?;
        analytic += dot(&g, v);
        scale += dot(&g.abs(), &v.abs());
        input_mag += dot(&g.abs(), &x.abs());
        debug_assert_eq!(g.shape(), x.shape());
    }

    let magnitude = inputs.iter().fold(1.0f32, |m, x| m.max(x.max_abs()));
    let h = opts.step * magnitude;
    let phi = |t: f32| -> Result<f64> {
        let moved: Vec<Tensor> = inputs
            .iter()
            .zip(&dirs)
            .map(|(x, v)| x.add(&v.mul_scalar(t)))
            .collect::<Result<_>>()?;
        let (tape, _, out) = run(&moved)?;
        Ok(dot(&u, tape.value(out)?))
    };
    let central = |h: f32| -> Result<f64> { Ok((phi(h)? - phi(-h)?) / (2.0 * h as f64)) };
    let (d1, d2) = (central(h)?, central(h / 2.0)?);
    let numeric = (4.0 * d2 - d1) / 3.0;

    // Eight ulps per output of rounding, divided by the step as the difference quotient does.
    let out_mag = dot(&u.abs(), &tape.value(out)?.abs());
    // The moved inputs `x + t v` are rounded too (half an ulp of x each), which moves phi
    // by up to `eps/2 sum |J^T u| |x|` per evaluation; through the two central differences
    // and Richardson's (4 d(h/2) - d(h)) / 3 that is 1.5 eps sum |J^T u| |x| / h, rounded up
    // to 2. It matters where f(x) is near 0 (so the output term is tiny) and the random
    // direction is short.
    let noise = (8.0 * out_mag + 2.0 * input_mag) * f32::EPSILON as f64 / h as f64;
    let report = GradcheckReport {
        analytic,
        numeric,
        scale,
        noise,
    };
    if report.error() > opts.tolerance || !report.error().is_finite() {
        return Err(Error::invalid(
            "gradcheck",
            format!(
                "backward gives {analytic:.6e} but finite differences give {numeric:.6e} (error {:.3e} > {:.1e})",
                report.error(),
                opts.tolerance
            ),
        ));
    }
    Ok(report)
}
