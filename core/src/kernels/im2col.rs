//! Data-layout helpers for the convolution kernels: im2col and its adjoint
//! col2im in the channel-major `[K, P]` layout (one matrix row per
//! `(ci, ki, kj)`, written as whole output-row segments: a `fill` for
//! padding and a short fixed-width copy for the in-bounds span, whose bounds
//! are computed once per row), the pixel-major `[P, K]` variant built from an
//! HWC copy of the sample (one contiguous run of `kw * c_in` per kernel
//! row), a cache-blocked transpose, and a vectorisable sum.

use super::conv::Conv2dGeom;

/// Half-open range of output indices `o` whose input index
/// `o * stride + k - pad` lies in `0..len`, clipped to `0..out`.
fn valid_range(out: usize, len: usize, k: usize, stride: usize, pad: usize) -> (usize, usize) {
    let lo = if k >= pad {
        0
    } else {
        (pad - k).div_ceil(stride)
    };
    let hi = if len + pad > k {
        (len + pad - k).div_ceil(stride)
    } else {
        0
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// One row `r = (ci, ki, kj)` of the im2col matrix: output rows
/// `oh_lo..oh_hi` read input rows in bounds, and within those, output columns
/// `lo..hi` read input columns in bounds; everything else is padding. `src`
/// is the input offset read by output `(oh_lo, lo)`; each further output row
/// moves it by `src_oh` and each further output column by `stride[1]`.
struct ColRow {
    r: usize,
    oh: (usize, usize),
    lo: usize,
    hi: usize,
    src: usize,
    src_oh: usize,
}

/// Calls `f` for every row of the im2col matrix, in order.
fn for_each_col_row(g: &Conv2dGeom, mut f: impl FnMut(ColRow)) {
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    for ci in 0..g.c_in {
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = valid_range(oh_n, g.h, ki, sh, ph);
            for kj in 0..g.kw {
                let r = (ci * g.kh + ki) * g.kw + kj;
                let (lo, hi) = valid_range(ow_n, g.w, kj, sw, pw);
                let (oh, src) = if lo == hi || oh_lo == oh_hi {
                    ((0, 0), 0)
                } else {
                    // oh_lo * sh + ki >= ph and lo * sw + kj >= pw by
                    // construction of the valid ranges.
                    let ih = oh_lo * sh + ki - ph;
                    ((oh_lo, oh_hi), (ci * g.h + ih) * g.w + lo * sw + kj - pw)
                };
                f(ColRow {
                    r,
                    oh,
                    lo,
                    hi,
                    src,
                    src_oh: sh * g.w,
                });
            }
        }
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for short runs (an
/// im2col segment is one output row, often 5-30 floats): two overlapping
/// fixed-width copies cover any length between the width and twice it.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    macro_rules! pair {
        ($w:expr) => {{
            dst[..$w].copy_from_slice(&src[..$w]);
            dst[n - $w..].copy_from_slice(&src[n - $w..]);
        }};
    }
    match n {
        0..=3 => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s),
        4..=8 => pair!(4),
        9..=16 => pair!(8),
        17..=32 => pair!(16),
        33..=64 => pair!(32),
        _ => dst.copy_from_slice(src),
    }
}

/// Sum of a slice with 16 independent accumulators (vectorisable, unlike a
/// sequential `iter().sum()`).
pub(super) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        acc.iter_mut().zip(c).for_each(|(a, x)| *a += *x);
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `cols[K, P]` = receptive fields of one sample `x_n[c_in, h, w]`.
pub(super) fn im2col(g: &Conv2dGeom, x_n: &[f32], cols: &mut [f32]) {
    let (ow_n, p, sw) = (g.out_w(), g.p_dim(), g.stride[1]);
    for_each_col_row(g, |row| {
        let ColRow {
            r,
            oh: (oh_lo, oh_hi),
            lo,
            hi,
            src,
            src_oh,
        } = row;
        let dst = &mut cols[r * p..(r + 1) * p];
        dst[..oh_lo * ow_n].fill(0.0);
        dst[oh_hi * ow_n..].fill(0.0);
        let width = hi - lo;
        for (i, seg) in dst[oh_lo * ow_n..oh_hi * ow_n]
            .chunks_exact_mut(ow_n)
            .enumerate()
        {
            let start = src + i * src_oh;
            if lo > 0 {
                seg[..lo].fill(0.0);
            }
            if sw == 1 {
                copy_run(&mut seg[lo..hi], &x_n[start..start + width]);
            } else {
                let s = x_n[start..].iter().step_by(sw);
                seg[lo..hi].iter_mut().zip(s).for_each(|(d, s)| *d = *s);
            }
            if hi < ow_n {
                seg[hi..].fill(0.0);
            }
        }
    });
}

/// `grad_x_n[c_in, h, w] +=` scatter of `cols[K, P]` (adjoint of im2col).
pub(super) fn col2im_add(g: &Conv2dGeom, cols: &[f32], grad_x_n: &mut [f32]) {
    let (ow_n, p, sw) = (g.out_w(), g.p_dim(), g.stride[1]);
    for_each_col_row(g, |row| {
        let ColRow {
            r,
            oh: (oh_lo, oh_hi),
            lo,
            hi,
            src,
            src_oh,
        } = row;
        let rows = &cols[r * p + oh_lo * ow_n..r * p + oh_hi * ow_n];
        for (i, seg) in rows.chunks_exact(ow_n).enumerate() {
            let start = src + i * src_oh;
            if sw == 1 {
                let dst = &mut grad_x_n[start..start + (hi - lo)];
                dst.iter_mut().zip(&seg[lo..hi]).for_each(|(d, s)| *d += *s);
            } else {
                let dst = grad_x_n[start..].iter_mut().step_by(sw);
                dst.zip(&seg[lo..hi]).for_each(|(d, s)| *d += *s);
            }
        }
    });
}

/// `dst[c * rows + r] = src[r * cols + c]`: `dst` is the `cols x rows`
/// transpose of the row-major `rows x cols` matrix `src` (cache-blocked).
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            let c1 = (c0 + B).min(cols);
            for r in r0..(r0 + B).min(rows) {
                for (j, v) in src[r * cols + c0..r * cols + c1].iter().enumerate() {
                    dst[(c0 + j) * rows + r] = *v;
                }
            }
        }
    }
}

/// Pixel-major im2col: `cols_t[P, K]` with `K` ordered `(ki, kj, ci)`, from
/// the sample in HWC layout (`xt[(ih * w + iw) * c_in + ci]`), so that each
/// kernel row of a receptive field is one contiguous run of `kw * c_in`.
pub(super) fn im2col_pixel_major(g: &Conv2dGeom, xt: &[f32], cols_t: &mut [f32]) {
    let (kd, ow_n) = (g.k_dim(), g.out_w());
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let run = g.kw * g.c_in;
    for (pix, row) in cols_t.chunks_exact_mut(kd).enumerate() {
        let (oh, ow) = (pix / ow_n, pix % ow_n);
        let base = ow * sw; // input column of kj is base + kj - pw
        let kj_hi = (g.w + pw).saturating_sub(base).min(g.kw);
        let kj_lo = pw.saturating_sub(base).min(kj_hi);
        for (ki, seg) in row.chunks_exact_mut(run).enumerate() {
            let ih = oh * sh + ki;
            if ih < ph || ih - ph >= g.h || kj_lo == kj_hi {
                seg.fill(0.0);
                continue;
            }
            let (a, b) = (kj_lo * g.c_in, kj_hi * g.c_in);
            seg[..a].fill(0.0);
            seg[b..].fill(0.0);
            let start = ((ih - ph) * g.w + base + kj_lo - pw) * g.c_in;
            copy_run(&mut seg[a..b], &xt[start..start + (b - a)]);
        }
    }
}
