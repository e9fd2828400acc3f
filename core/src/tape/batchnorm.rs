//! BatchNorm2d arithmetic: per-channel statistics over (N, H, W), forward and VJP.

use super::op::NormStats;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// (n, c, h*w) of an NCHW shape, or an error.
fn nchw(x: &[usize]) -> Result<(usize, usize, usize)> {
    match *x {
        [n, c, h, w] => Ok((n, c, h * w)),
        _ => Err(Error::shape(
            "batch_norm2d",
            &[x],
            "the input must be [N, C, H, W]",
        )),
    }
}

/// Per-channel values of `x` as (n, channel, plane) -> flat index iterator helper.
fn for_channel(x: &[f32], n: usize, c: usize, hw: usize, ch: usize, mut f: impl FnMut(usize, f32)) {
    for i in 0..n {
        let base = (i * c + ch) * hw;
        for (k, &v) in x[base..base + hw].iter().enumerate() {
            f(base + k, v);
        }
    }
}

/// Batch mean and biased variance per channel (f64 accumulation), as PyTorch normalises with.
pub(super) fn batch_stats(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let (n, c, hw) = nchw(x.shape())?;
    let m = (n * hw) as f64;
    if m == 0.0 {
        return Err(Error::shape(
            "batch_norm2d",
            &[x.shape()],
            "an empty batch has no statistics",
        ));
    }
    let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let mut s = 0.0f64;
        for_channel(x.data(), n, c, hw, ch, |_, v| s += v as f64);
        let mu = s / m;
        let mut q = 0.0f64;
        for_channel(x.data(), n, c, hw, ch, |_, v| q += (v as f64 - mu).powi(2));
        mean[ch] = mu as f32;
        var[ch] = (q / m) as f32;
    }
    Ok((Tensor::from_vec(mean, &[c])?, Tensor::from_vec(var, &[c])?))
}

fn check(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    s: &NormStats,
) -> Result<(usize, usize, usize)> {
    let (n, c, hw) = nchw(x.shape())?;
    for t in [weight, bias, &s.mean, &s.var] {
        if t.shape() != [c] {
            return Err(Error::shape(
                "batch_norm2d",
                &[x.shape(), t.shape()],
                format!("per-channel parameters and statistics must have shape [{c}]"),
            ));
        }
    }
    Ok((n, c, hw))
}

fn inv_std(s: &NormStats, ch: usize) -> f32 {
    1.0 / (s.var.data()[ch] + s.eps).sqrt()
}

/// `(x - mean) / sqrt(var + eps) * weight + bias`.
pub(super) fn forward(x: &Tensor, weight: &Tensor, bias: &Tensor, s: &NormStats) -> Result<Tensor> {
    let (n, c, hw) = check(x, weight, bias, s)?;
    let mut out = vec![0.0; x.numel()];
    for ch in 0..c {
        let scale = weight.data()[ch] * inv_std(s, ch);
        let shift = bias.data()[ch] - s.mean.data()[ch] * scale;
        for_channel(x.data(), n, c, hw, ch, |i, v| out[i] = v * scale + shift);
    }
    Tensor::from_vec(out, x.shape())
}

/// Signals for (x, weight, bias). With batch statistics the mean and variance depend on
/// `x`, which adds the two centring terms of the classic BatchNorm backward formula.
pub(super) fn vjp(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    s: &NormStats,
    g: &Tensor,
) -> Result<[Tensor; 3]> {
    let (n, c, hw) = check(x, weight, bias, s)?;
    let m = (n * hw) as f32;
    let (mut gx, mut gw, mut gb) = (vec![0.0; x.numel()], vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let (mu, is) = (s.mean.data()[ch], inv_std(s, ch));
        let (mut sum_g, mut sum_g_xhat) = (0.0f64, 0.0f64);
        for_channel(x.data(), n, c, hw, ch, |i, v| {
            sum_g += g.data()[i] as f64;
            sum_g_xhat += (g.data()[i] * (v - mu) * is) as f64;
        });
        gb[ch] = sum_g as f32;
        gw[ch] = sum_g_xhat as f32;
        let w = weight.data()[ch];
        for_channel(x.data(), n, c, hw, ch, |i, v| {
            gx[i] = if s.from_batch {
                let xhat = (v - mu) * is;
                w * is * (g.data()[i] - sum_g as f32 / m - xhat * sum_g_xhat as f32 / m)
            } else {
                w * is * g.data()[i]
            };
        });
    }
    Ok([
        Tensor::from_vec(gx, x.shape())?,
        Tensor::from_vec(gw, &[c])?,
        Tensor::from_vec(gb, &[c])?,
    ])
}
