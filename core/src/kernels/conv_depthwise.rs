//! Depthwise convolution (one input channel per group, any channel multiplier) by direct
//! loops over the kernel taps. With one input channel a group's im2col matrix has only
//! `kh * kw` rows, so an im2col + GEMM would spend its time laying data out and packing
//! tiny operands; here each tap is one scaled, strided row update per output row.
//!
//! Groups are independent, so a large enough sample that is not already one task of an
//! outer split (a batch of one) is split across threads by groups: each group's outputs,
//! input gradient and weight gradient are written by one task alone, in the same order as
//! serially, so the bits do not depend on the number of threads.

use super::conv_general::{span, GeneralGeom};
use super::split::{as_task, may_split};
use rayon::prelude::*;

/// Multiply-adds from which one sample is split across threads by groups; below it waking
/// the pool costs more than it saves.
const PAR_MIN_WORK: usize = 1 << 18;

/// Runs `f(group, chunk)` for every group's chunk of `data` (`chunk` floats each), over
/// threads when the sample is worth splitting and splitting is allowed here.
fn per_group(
    g: &GeneralGeom,
    data: &mut [f32],
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    let work = g.c_out * g.kh * g.kw * g.p_dim();
    let data = &mut data[..g.groups * chunk];
    if g.groups > 1 && chunk > 0 && work >= PAR_MIN_WORK && may_split() {
        let chunks = data.par_chunks_mut(chunk).enumerate();
        chunks.for_each(|(gi, c)| as_task(|| f(gi, c)));
    } else if chunk > 0 {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(gi, c)| f(gi, c));
    }
}

/// Calls `f(j, tap, oh, (lo, hi), src)` for the `j`-th output channel of group `gi`,
/// output row `oh` and kernel tap `tap = ki * kw + kj` whose input row is in bounds:
/// output columns `lo..hi` of that row read the group's input plane from offset `src`
/// on, every `stride[1]`-th value. Taps are the inner loop, so one output row takes all
/// its updates while it is in the cache (the whole plane often does not fit).
fn for_each_tap(g: &GeneralGeom, mut f: impl FnMut(usize, usize, usize, (usize, usize), usize)) {
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let ([sh, sw], [dh, dwl], [pt, pl]) = (g.stride, g.dilation, g.pad_start);
    let cols: Vec<(usize, usize)> = (0..g.kw)
        .map(|kj| span(ow_n, g.w, kj * dwl, sw, pl))
        .collect();
    for j in 0..g.c_out_g() {
        for oh in 0..oh_n {
            for ki in 0..g.kh {
                // Input row oh * sh + ki * dh - pt, when it lies in 0..h.
                let Some(ih) = (oh * sh + ki * dh).checked_sub(pt).filter(|&ih| ih < g.h) else {
                    continue;
                };
                for (kj, &(lo, hi)) in cols.iter().enumerate() {
                    if lo < hi {
                        // lo * sw + kj * dwl >= pl by construction of the span.
                        let src = ih * g.w + lo * sw + kj * dwl - pl;
                        f(j, ki * g.kw + kj, oh, (lo, hi), src);
                    }
                }
            }
        }
    }
}

/// `out_n += conv(x_n, w)` for one sample.
pub(super) fn forward_add(g: &GeneralGeom, x_n: &[f32], w: &[f32], out_n: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    let mult = g.c_out_g();
    per_group(g, out_n, mult * p, |gi, out_g| {
        let x_g = &x_n[gi * hw..(gi + 1) * hw];
        let w_g = &w[gi * mult * khw..(gi + 1) * mult * khw];
        for_each_tap(g, |j, tap, oh, (lo, hi), src| {
            let wv = w_g[j * khw + tap];
            let dst = &mut out_g[j * p + oh * ow_n..][lo..hi];
            if sw == 1 {
                // Slices of equal length: the loop vectorises (a stepped iterator does not).
                let xs = &x_g[src..src + dst.len()];
                dst.iter_mut().zip(xs).for_each(|(d, x)| *d += wv * x);
            } else {
                let xs = x_g[src..].iter().step_by(sw);
                dst.iter_mut().zip(xs).for_each(|(d, x)| *d += wv * x);
            }
        });
    });
}

/// `gx_n += J_w^T(go_n)` for one sample.
pub(super) fn input_vjp_add(g: &GeneralGeom, go_n: &[f32], w: &[f32], gx_n: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    let mult = g.c_out_g();
    per_group(g, gx_n, hw, |gi, gx_g| {
        let go_g = &go_n[gi * mult * p..(gi + 1) * mult * p];
        let w_g = &w[gi * mult * khw..(gi + 1) * mult * khw];
        for_each_tap(g, |j, tap, oh, (lo, hi), src| {
            let wv = w_g[j * khw + tap];
            let gos = &go_g[j * p + oh * ow_n..][lo..hi];
            if sw == 1 {
                let dst = &mut gx_g[src..src + gos.len()];
                dst.iter_mut().zip(gos).for_each(|(d, go)| *d += wv * go);
            } else {
                let dst = gx_g[src..].iter_mut().step_by(sw);
                dst.zip(gos).for_each(|(d, go)| *d += wv * go);
            }
        });
    });
}

/// `gw += ` one sample's weight gradient.
pub(super) fn weight_grad_add(g: &GeneralGeom, x_n: &[f32], go_n: &[f32], gw: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    let mult = g.c_out_g();
    per_group(g, gw, mult * khw, |gi, gw_g| {
        let x_g = &x_n[gi * hw..(gi + 1) * hw];
        let go_g = &go_n[gi * mult * p..(gi + 1) * mult * p];
        for_each_tap(g, |j, tap, oh, (lo, hi), src| {
            let gos = &go_g[j * p + oh * ow_n..][lo..hi];
            gw_g[j * khw + tap] += if sw == 1 {
                dot(gos, &x_g[src..src + gos.len()])
            } else {
                let xs = x_g[src..].iter().step_by(sw);
                gos.iter().zip(xs).map(|(go, x)| go * x).sum::<f32>()
            };
        });
    });
}

/// `sum a * b` over equal-length slices with 8 independent accumulators (vectorisable,
/// unlike a sequential sum).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}
