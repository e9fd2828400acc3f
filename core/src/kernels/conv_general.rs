//! 2-D convolution with any options: asymmetric padding, dilation and channel groups
//! (weights `[c_out, c_in / groups, kh, kw]`). Plain convolutions (see
//! [`GeneralGeom::plain`]) go to the optimised kernels of [`super::conv`]; the rest come
//! here.
//!
//! A sample is handled one group at a time: the group's receptive fields are laid out as
//! a `[K, P]` im2col matrix (`K = c_in / groups * kh * kw`, taps `d` apart, padding cells
//! zero), the forward pass is `out_g = W_g cols` and the input VJP `cols = W_g^T go_g`
//! scattered back by col2im, each product through [`gemm`]. A depthwise convolution (one
//! input channel per group, as in MobileNet) would make those GEMMs tiny, so it is done by
//! direct loops over the taps instead (the `conv_depthwise` module). Samples are spread
//! over threads as in [`super::conv`] (a GEMM inside a sample's task stays on its
//! thread); the weight gradient sums a fixed number of chunks in a fixed order, so it
//! does not depend on the thread count.

use super::conv::{for_each_sample, scratch_of, Conv2dGeom, SHAPES_OK};
use super::conv_depthwise as dw;
use super::conv_fused::WeightedVjp;
use super::gemm::gemm;
use super::split::as_task;
use rayon::prelude::*;

/// Geometry of a general 2-D convolution. Per-axis arrays are `[rows, cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralGeom {
    /// Batch size.
    pub n: usize,
    /// Input channels (all groups).
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels (all groups).
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride, each >= 1.
    pub stride: [usize; 2],
    /// Zero padding at the start `[top, left]`.
    pub pad_start: [usize; 2],
    /// Zero padding at the end `[bottom, right]`.
    pub pad_end: [usize; 2],
    /// Spacing between kernel taps, each >= 1.
    pub dilation: [usize; 2],
    /// Channel groups, dividing `c_in` and `c_out`.
    pub groups: usize,
}

impl GeneralGeom {
    /// `(h + pad_start + pad_end - dilation * (kh - 1) - 1) / stride + 1`; callers
    /// guarantee the dilated kernel fits the padded input.
    pub fn out_h(&self) -> usize {
        let reach = self.dilation[0] * (self.kh - 1) + 1;
        (self.h + self.pad_start[0] + self.pad_end[0] - reach) / self.stride[0] + 1
    }

    /// The same along the width.
    pub fn out_w(&self) -> usize {
        let reach = self.dilation[1] * (self.kw - 1) + 1;
        (self.w + self.pad_start[1] + self.pad_end[1] - reach) / self.stride[1] + 1
    }

    /// Input channels per group.
    pub fn c_in_g(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub fn c_out_g(&self) -> usize {
        self.c_out / self.groups
    }

    /// Rows of one group's im2col matrix: `c_in / groups * kh * kw` (also the length of
    /// one output channel's weights).
    pub fn k_dim(&self) -> usize {
        self.c_in_g() * self.kh * self.kw
    }

    /// Output pixels per channel.
    pub fn p_dim(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// The geometry of the optimised kernels when this convolution is plain (no
    /// dilation, one group, symmetric padding), else `None`.
    pub fn plain(&self) -> Option<Conv2dGeom> {
        let plain = self.dilation == [1, 1] && self.groups == 1 && self.pad_start == self.pad_end;
        plain.then_some(Conv2dGeom {
            n: self.n,
            c_in: self.c_in,
            h: self.h,
            w: self.w,
            c_out: self.c_out,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            padding: self.pad_start,
        })
    }

    /// One input channel per group: direct loops instead of GEMMs.
    pub(super) fn depthwise(&self) -> bool {
        self.c_in_g() == 1
    }

    fn x_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.c_out * self.p_dim()
    }

    /// Floats of one group's im2col matrix (none when depthwise).
    fn cols_len(&self) -> usize {
        if self.depthwise() {
            0
        } else {
            self.k_dim() * self.p_dim()
        }
    }
}

/// Half-open range of outputs `o < out` whose input index `o * stride + off - pad` lies
/// in `0..len` (`off` is the tap's offset `k * dilation`).
pub(super) fn span(
    out: usize,
    len: usize,
    off: usize,
    stride: usize,
    pad: usize,
) -> (usize, usize) {
    let lo = pad.saturating_sub(off).div_ceil(stride);
    let hi = (len + pad).saturating_sub(off).div_ceil(stride).min(out);
    (lo.min(hi), hi)
}

/// Calls `f(row, oh, ih, (lo, hi), iw_lo)` for every im2col row `(ci, ki, kj)` of one
/// group and every output row `oh` whose input row `ih` is in bounds: output columns
/// `lo..hi` read input columns `iw_lo, iw_lo + stride, ...`.
fn for_each_tap_row(
    g: &GeneralGeom,
    mut f: impl FnMut(usize, usize, usize, (usize, usize), usize),
) {
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let ([sh, sw], [dh, dwl], [pt, pl]) = (g.stride, g.dilation, g.pad_start);
    for ci in 0..g.c_in_g() {
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = span(oh_n, g.h, ki * dh, sh, pt);
            for kj in 0..g.kw {
                let row = (ci * g.kh + ki) * g.kw + kj;
                let (lo, hi) = span(ow_n, g.w, kj * dwl, sw, pl);
                if lo == hi {
                    continue;
                }
                for oh in oh_lo..oh_hi {
                    // In bounds by construction of the spans.
                    let ih = oh * sh + ki * dh - pt;
                    f(
                        row,
                        oh,
                        ci * g.h * g.w + ih * g.w,
                        (lo, hi),
                        lo * sw + kj * dwl - pl,
                    );
                }
            }
        }
    }
}

/// `cols[K, P]` = the receptive fields of one group's input `x_g[c_in / groups, h, w]`.
fn im2col(g: &GeneralGeom, x_g: &[f32], cols: &mut [f32]) {
    let (p, ow_n, sw) = (g.p_dim(), g.out_w(), g.stride[1]);
    cols.fill(0.0);
    for_each_tap_row(g, |row, oh, at, (lo, hi), iw| {
        let dst = &mut cols[row * p + oh * ow_n..][lo..hi];
        if sw == 1 {
            dst.copy_from_slice(&x_g[at + iw..at + iw + dst.len()]);
        } else {
            let src = x_g[at + iw..].iter().step_by(sw);
            dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
        }
    });
}

/// `gx_g += ` the scatter of `cols[K, P]` (the adjoint of [`im2col`]).
fn col2im_add(g: &GeneralGeom, cols: &[f32], gx_g: &mut [f32]) {
    let (p, ow_n, sw) = (g.p_dim(), g.out_w(), g.stride[1]);
    for_each_tap_row(g, |row, oh, at, (lo, hi), iw| {
        let src = &cols[row * p + oh * ow_n..][lo..hi];
        if sw == 1 {
            let dst = &mut gx_g[at + iw..at + iw + src.len()];
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
        } else {
            let dst = gx_g[at + iw..].iter_mut().step_by(sw);
            dst.zip(src).for_each(|(d, s)| *d += *s);
        }
    });
}

/// One sample's `out_n = conv(x_n, w) + b` (overwritten), with `cols` as scratch
/// ([`GeneralGeom::cols_len`] floats).
fn forward_sample(
    g: &GeneralGeom,
    x_n: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    cols: &mut [f32],
    out_n: &mut [f32],
) {
    let p = g.p_dim();
    match b {
        Some(b) => out_n
            .chunks_exact_mut(p)
            .zip(b)
            .for_each(|(row, &bv)| row.fill(bv)),
        None => out_n.fill(0.0),
    }
    if g.depthwise() {
        return dw::forward_add(g, x_n, w, out_n);
    }
    let (kd, cog) = (g.k_dim(), g.c_out_g());
    let xg_len = g.c_in_g() * g.h * g.w;
    for gi in 0..g.groups {
        im2col(g, &x_n[gi * xg_len..(gi + 1) * xg_len], cols);
        let w_g = &w[gi * cog * kd..(gi + 1) * cog * kd];
        let out_g = &mut out_n[gi * cog * p..(gi + 1) * cog * p];
        gemm(cog, kd, p, 1.0, w_g, false, cols, false, 1.0, out_g).expect(SHAPES_OK);
    }
}

/// One sample's input VJP `gx_n = J_w^T(go_n)` (overwritten), with `cols` as scratch.
fn input_vjp_sample(g: &GeneralGeom, go_n: &[f32], w: &[f32], cols: &mut [f32], gx_n: &mut [f32]) {
    gx_n.fill(0.0);
    if g.depthwise() {
        return dw::input_vjp_add(g, go_n, w, gx_n);
    }
    let (kd, cog, p) = (g.k_dim(), g.c_out_g(), g.p_dim());
    let xg_len = g.c_in_g() * g.h * g.w;
    for gi in 0..g.groups {
        let w_g = &w[gi * cog * kd..(gi + 1) * cog * kd];
        let go_g = &go_n[gi * cog * p..(gi + 1) * cog * p];
        gemm(kd, cog, p, 1.0, w_g, true, go_g, false, 0.0, cols).expect(SHAPES_OK);
        col2im_add(g, cols, &mut gx_n[gi * xg_len..(gi + 1) * xg_len]);
    }
}

/// Adds one sample's weight gradient to `gw` and its bias gradient to `gb`.
fn weight_grad_sample(
    g: &GeneralGeom,
    x_n: &[f32],
    go_n: &[f32],
    cols: &mut [f32],
    gw: &mut [f32],
    gb: &mut [f32],
) {
    let (kd, cog, p) = (g.k_dim(), g.c_out_g(), g.p_dim());
    for (acc, row) in gb.iter_mut().zip(go_n.chunks_exact(p)) {
        *acc += row.iter().sum::<f32>();
    }
    if g.depthwise() {
        return dw::weight_grad_add(g, x_n, go_n, gw);
    }
    let xg_len = g.c_in_g() * g.h * g.w;
    for gi in 0..g.groups {
        im2col(g, &x_n[gi * xg_len..(gi + 1) * xg_len], cols);
        let go_g = &go_n[gi * cog * p..(gi + 1) * cog * p];
        let gw_g = &mut gw[gi * cog * kd..(gi + 1) * cog * kd];
        gemm(cog, p, kd, 1.0, go_g, false, cols, true, 1.0, gw_g).expect(SHAPES_OK);
    }
}

/// `out[n, c_out, oh, ow] = sum w * x (+ b[c_out])` (overwritten).
pub fn forward(g: &GeneralGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    let (x_sz, b) = (g.x_len(), b.map(|b| &b[..g.c_out]));
    for_each_sample(g.n, out, g.out_len(), |i, out_n, scratch| {
        let cols = scratch_of(scratch, g.cols_len());
        forward_sample(g, &x[i * x_sz..(i + 1) * x_sz], w, b, cols, out_n);
    });
}

/// `grad_x` (overwritten) = the input VJP of the convolution applied to `grad_out`.
pub fn backward_input(g: &GeneralGeom, grad_out: &[f32], w: &[f32], grad_x: &mut [f32]) {
    let o_sz = g.out_len();
    for_each_sample(g.n, grad_x, g.x_len(), |i, gx_n, scratch| {
        let cols = scratch_of(scratch, g.cols_len());
        input_vjp_sample(g, &grad_out[i * o_sz..(i + 1) * o_sz], w, cols, gx_n);
    });
}

/// `grad_w` and `grad_b` (overwritten): the weight and bias VJPs for input `x`.
pub fn backward_weight(
    g: &GeneralGeom,
    x: &[f32],
    grad_out: &[f32],
    grad_w: &mut [f32],
    grad_b: &mut [f32],
) {
    let (x_sz, o_sz, w_sz) = (g.x_len(), g.out_len(), g.c_out * g.k_dim());
    // A fixed number of chunks reduced in chunk order, as in the plain kernel: the sum is
    // grouped the same way on any number of threads.
    const CHUNKS: usize = 8;
    let per_chunk = g.n.div_ceil(CHUNKS).max(1);
    let chunks = g.n.div_ceil(per_chunk);
    let run_chunk = |c: usize| {
        let (mut gw, mut gb) = (vec![0.0f32; w_sz], vec![0.0f32; g.c_out]);
        let mut cols = vec![0.0f32; g.cols_len()];
        for i in c * per_chunk..((c + 1) * per_chunk).min(g.n) {
            let (x_n, go_n) = (
                &x[i * x_sz..(i + 1) * x_sz],
                &grad_out[i * o_sz..(i + 1) * o_sz],
            );
            weight_grad_sample(g, x_n, go_n, &mut cols, &mut gw, &mut gb);
        }
        (gw, gb)
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if chunks <= 1 {
        vec![run_chunk(0)]
    } else {
        (0..chunks)
            .into_par_iter()
            .map(|c| as_task(|| run_chunk(c)))
            .collect()
    };
    grad_w[..w_sz].fill(0.0);
    grad_b[..g.c_out].fill(0.0);
    for (pw, pb) in partials {
        grad_w.iter_mut().zip(&pw).for_each(|(d, s)| *d += *s);
        grad_b.iter_mut().zip(&pb).for_each(|(d, s)| *d += *s);
    }
}

/// `out[n] = x[n] * J^T(f(r[n], conv(x[n], w) + b))` a sample at a time (see
/// [`super::conv_fused`]); `out` is overwritten.
pub fn forward_map_backward(
    g: &GeneralGeom,
    (x, w, b): (&[f32], &[f32], Option<&[f32]>),
    r: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
    out: &mut [f32],
) {
    let (x_sz, o_sz, b) = (g.x_len(), g.out_len(), b.map(|b| &b[..g.c_out]));
    for_each_sample(g.n, out, x_sz, |i, out_n, scratch| {
        let x_n = &x[i * x_sz..(i + 1) * x_sz];
        let buf = scratch_of(scratch, g.cols_len() + o_sz);
        let (cols, z) = buf.split_at_mut(g.cols_len());
        forward_sample(g, x_n, w, b, cols, z);
        let r_n = &r[i * o_sz..(i + 1) * o_sz];
        z.iter_mut().zip(r_n).for_each(|(z, &r)| *z = f(r, *z));
        input_vjp_sample(g, z, w, cols, out_n);
        out_n.iter_mut().zip(x_n).for_each(|(o, &x)| *o *= x);
    });
}

/// `out[n] = sum_b factor_b * x_b[n] ⊙ J_{w_b}^T(s[n])` with `s_of(n, s_n)` writing each
/// sample's signal (see [`super::conv_fused::conv2d_weighted_input_grads`]).
pub fn weighted_input_grads(
    g: &GeneralGeom,
    s_of: impl Fn(usize, &mut [f32]) + Sync + Send,
    terms: &[WeightedVjp],
    out: &mut [f32],
) {
    let (x_sz, o_sz) = (g.x_len(), g.out_len());
    for_each_sample(g.n, out, x_sz, |i, out_n, scratch| {
        let buf = scratch_of(scratch, o_sz + g.cols_len() + x_sz);
        let (s_n, rest) = buf.split_at_mut(o_sz);
        let (cols, vjp) = rest.split_at_mut(g.cols_len());
        s_of(i, s_n);
        out_n.fill(0.0);
        for term in terms {
            input_vjp_sample(g, s_n, term.w, cols, vjp);
            let x_n = if term.x.len() == x_sz {
                term.x
            } else {
                &term.x[i * x_sz..(i + 1) * x_sz]
            };
            let f = term.factor;
            let each = out_n.iter_mut().zip(x_n.iter().zip(vjp.iter()));
            each.for_each(|(o, (&x, &g))| *o += x * g * f);
        }
    });
}
