//! One sample split across threads by bands of output rows.
//!
//! With a batch of one there is no batch to share out, and splitting the GEMM alone
//! leaves im2col, col2im and the packing of the large operand to every thread or to
//! one. Instead the sample is zero-padded once, and each thread takes a band of output
//! rows: it copies the input rows its band reads into a small sample of its own (already
//! padded, so the band's geometry has no padding) and runs the ordinary single-threaded
//! kernel on it. Output bands are disjoint and copied into place; the input rows two
//! bands read overlap by the kernel's reach, so input-side results are added up.

use super::conv::{conv2d_backward_input, forward_samples, Conv2dGeom, WeightOperand};
use super::conv_fused;
use super::split::{as_task, may_split};
use rayon::prelude::*;

/// Multiply-adds from which a single sample is split into bands; below it waking the
/// pool costs more than it saves.
const MIN_WORK: usize = 1 << 20;

/// The bands `[oh0, oh1)` of output rows for a single sample worth splitting, one per
/// thread, or `None`.
pub(super) fn bands(g: &Conv2dGeom) -> Option<Vec<(usize, usize)>> {
    let threads = rayon::current_num_threads();
    let oh = g.out_h();
    // A pointwise convolution is one GEMM on the sample as it lies, which splits itself
    // across threads without the bands' copies of the input and output rows.
    let worth = g.n == 1
        && !g.pointwise()
        && oh >= 2 * threads
        && g.c_out * g.k_dim() * g.p_dim() >= MIN_WORK
        && may_split();
    worth.then(|| {
        (0..threads)
            .map(|t| (t * oh / threads, (t + 1) * oh / threads))
            .collect()
    })
}

/// The padded sample `[c_in, h + 2 ph, w + 2 pw]` and its height and width.
fn padded(g: &Conv2dGeom, x: &[f32]) -> (Vec<f32>, usize, usize) {
    let [ph, pw] = g.padding;
    let (hp, wp) = (g.h + 2 * ph, g.w + 2 * pw);
    let mut xp = vec![0.0f32; g.c_in * hp * wp];
    for (plane, src) in xp.chunks_exact_mut(hp * wp).zip(x.chunks_exact(g.h * g.w)) {
        for (r, row) in src.chunks_exact(g.w).enumerate() {
            let at = (r + ph) * wp + pw;
            plane[at..at + g.w].copy_from_slice(row);
        }
    }
    (xp, hp, wp)
}

/// The geometry of band `[oh0, oh1)` and the first padded input row it reads.
fn band_geom(g: &Conv2dGeom, (oh0, oh1): (usize, usize), wp: usize) -> (Conv2dGeom, usize) {
    let first = oh0 * g.stride[0];
    let rows = (oh1 - oh0 - 1) * g.stride[0] + g.kh;
    let gb = Conv2dGeom {
        n: 1,
        h: rows,
        w: wp,
        padding: [0, 0],
        ..*g
    };
    (gb, first)
}

/// Rows `first..first + rows` of every plane of a `[c, hp, wp]` buffer.
fn plane_rows(
    buf: &[f32],
    planes: usize,
    hp: usize,
    wp: usize,
    first: usize,
    rows: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(planes * rows * wp);
    for plane in buf.chunks_exact(hp * wp).take(planes) {
        out.extend_from_slice(&plane[first * wp..(first + rows) * wp]);
    }
    out
}

/// Columns `[oh0 * ow, oh1 * ow)` of every row of a `[c, P]` output-shaped buffer.
fn band_of_output(buf: &[f32], g: &Conv2dGeom, (oh0, oh1): (usize, usize)) -> Vec<f32> {
    let (p, ow) = (g.p_dim(), g.out_w());
    buf.chunks_exact(p)
        .flat_map(|row| row[oh0 * ow..oh1 * ow].iter().copied())
        .collect()
}

/// `out[c_out, P]` of one sample, band by band (see the module docs), given the forward operand.
pub(super) fn forward(
    g: &Conv2dGeom,
    bands: &[(usize, usize)],
    x: &[f32],
    wt: WeightOperand,
    b: Option<&[f32]>,
    out: &mut [f32],
) {
    let (xp, hp, wp) = padded(g, x);
    let parts: Vec<Vec<f32>> = bands
        .par_iter()
        .map(|&band| {
            as_task(|| {
                let (gb, first) = band_geom(g, band, wp);
                let xb = plane_rows(&xp, g.c_in, hp, wp, first, gb.h);
                let mut ob = vec![0.0f32; g.c_out * gb.p_dim()];
                forward_samples(&gb, &xb, wt, b, &mut ob);
                ob
            })
        })
        .collect();
    let (p, ow) = (g.p_dim(), g.out_w());
    for (&(oh0, oh1), ob) in bands.iter().zip(&parts) {
        let pb = (oh1 - oh0) * ow;
        for (row, src) in out.chunks_exact_mut(p).zip(ob.chunks_exact(pb)) {
            row[oh0 * ow..oh1 * ow].copy_from_slice(src);
        }
    }
}

/// Adds each band's `[c_in, rows, wp]` input-side result into a padded `[c_in, hp, wp]`
/// buffer at its first row, and crops the padding into `dst` (overwritten).
fn gather_input_side(
    g: &Conv2dGeom,
    parts: Vec<(usize, Vec<f32>)>,
    (hp, wp): (usize, usize),
    dst: &mut [f32],
) {
    let mut acc = vec![0.0f32; g.c_in * hp * wp];
    for (first, part) in parts {
        let rows = part.len() / (g.c_in * wp);
        for (plane, src) in acc
            .chunks_exact_mut(hp * wp)
            .zip(part.chunks_exact(rows * wp))
        {
            let d = &mut plane[first * wp..(first + rows) * wp];
            d.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
        }
    }
    let [ph, pw] = g.padding;
    for (plane, d) in acc
        .chunks_exact(hp * wp)
        .zip(dst.chunks_exact_mut(g.h * g.w))
    {
        for (r, row) in d.chunks_exact_mut(g.w).enumerate() {
            let at = (r + ph) * wp + pw;
            row.copy_from_slice(&plane[at..at + g.w]);
        }
    }
}

/// The input VJP of one sample, band by band (`grad_x` overwritten).
pub(super) fn backward_input(
    g: &Conv2dGeom,
    bands: &[(usize, usize)],
    grad_out: &[f32],
    w: &[f32],
    grad_x: &mut [f32],
) {
    let (hp, wp) = (g.h + 2 * g.padding[0], g.w + 2 * g.padding[1]);
    let parts: Vec<(usize, Vec<f32>)> = bands
        .par_iter()
        .map(|&band| {
            as_task(|| {
                let (gb, first) = band_geom(g, band, wp);
                let gob = band_of_output(grad_out, g, band);
                let mut gxb = vec![0.0f32; g.c_in * gb.h * wp];
                conv2d_backward_input(&gb, &gob, w, &mut gxb);
                (first, gxb)
            })
        })
        .collect();
    gather_input_side(g, parts, (hp, wp), grad_x);
}

/// [`conv_fused::conv2d_forward_map_backward`] for one sample, band by band, given `W` and
/// `W^T` (`out` overwritten):
/// `x * J^T(...)` is linear in what each band passes back, so the bands' products with
/// their own copies of the input rows add up to the sample's.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_map_backward(
    g: &Conv2dGeom,
    bands: &[(usize, usize)],
    x: &[f32],
    (w, wt): (&[f32], WeightOperand),
    b: Option<&[f32]>,
    r: &[f32],
    f: &(impl Fn(f32, f32) -> f32 + Sync + Send),
    out: &mut [f32],
) {
    let (xp, hp, wp) = padded(g, x);
    let parts: Vec<(usize, Vec<f32>)> = bands
        .par_iter()
        .map(|&band| {
            as_task(|| {
                let (gb, first) = band_geom(g, band, wp);
                let xb = plane_rows(&xp, g.c_in, hp, wp, first, gb.h);
                let rb = band_of_output(r, g, band);
                let mut ob = vec![0.0f32; xb.len()];
                conv_fused::each_sample(&gb, &xb, (w, wt), b, &rb, f, &mut ob);
                (first, ob)
            })
        })
        .collect();
    gather_input_side(g, parts, (hp, wp), out);
}
