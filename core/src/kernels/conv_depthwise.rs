//! Depthwise convolution (one input channel per group, any channel multiplier) by direct
//! loops over the kernel taps. With one input channel a group's im2col matrix has only
//! `kh * kw` rows, so an im2col + GEMM would spend its time laying data out and packing
//! tiny operands; here every tap is one long, contiguous, scaled vector update.
//!
//! # The phase layout
//!
//! A group's input plane is copied once into a scratch buffer, zero-padded and split into
//! `stride_h * stride_w` *phase planes*: phase `(a, b)` holds the padded pixels whose row is
//! `a` modulo the row stride and whose column is `b` modulo the column stride, each phase
//! plane `wq` columns wide. In that layout output pixel `(oh, ow)` reads, for tap
//! `(ki, kj)`, the phase pixel at `base(ki, kj) + oh * wq + ow`: the same offset from a
//! per-tap base for every output pixel, whatever the stride, dilation or (asymmetric)
//! padding. So if the outputs are also laid out `wq` wide (the *wide* layout, whose extra
//! columns are scratch), a tap updates a whole block of output rows with one contiguous
//! `out += w * x` over `rows * wq` values: no bounds per row, no strided reads, and a loop
//! the compiler vectorises. The extra columns cost `wq / out_w - 1` more arithmetic (2% on
//! a 112-pixel plane, more on a 7-pixel one) and are dropped when the block is copied out.
//! The input VJP is the adjoint: the output signal is spread into the wide layout with
//! zeros in the extra columns, each tap adds `w * signal` into phase planes of the input
//! gradient, and those are gathered back. The weight gradient is one dot product per tap.
//!
//! Groups are independent, so a large enough sample that is not already one task of an
//! outer split (a batch of one) is split across threads by groups: each group's outputs,
//! input gradient and weight gradient are written by one task alone, in the same order as
//! serially, so the bits do not depend on the number of threads.

use super::conv_general::GeneralGeom;
use super::split::{as_task, may_split};
use rayon::prelude::*;
use std::cell::RefCell;

/// Multiply-adds from which one sample is split across threads by groups; below it waking
/// the pool costs more than it saves.
const PAR_MIN_WORK: usize = 1 << 18;

/// Values of the wide layout updated per tap at a time: a block of output rows that stays
/// in the L1 cache while all the taps are added to it.
const BLOCK: usize = 2048;

thread_local! {
    /// Each thread's phase planes and wide block, kept from call to call.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's two scratch buffers (fresh ones if they are in use).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            let (a, b) = &mut *s;
            f(a, b)
        }
        Err(_) => f(&mut Vec::new(), &mut Vec::new()),
    })
}

/// `buf` resized to `len` (contents unspecified).
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `buf` resized to `len` and zeroed.
fn zeroed(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.clear();
    buf.resize(len, 0.0);
    buf
}

/// Where the pixels of one group plane and its taps sit in the phase layout.
struct Phases {
    /// Strides `[rows, columns]`: the number of phases along each axis.
    stride: [usize; 2],
    /// Columns of a phase plane.
    wq: usize,
    /// Floats of a phase plane (its rows times `wq`).
    plane: usize,
    /// Output rows and columns.
    out: [usize; 2],
    /// Output rows per block, so that a block spans about [`BLOCK`] values.
    rows_per_block: usize,
}

impl Phases {
    fn new(g: &GeneralGeom) -> Phases {
        let [sh, sw] = g.stride;
        let hp = g.h + g.pad_start[0] + g.pad_end[0];
        let wp = g.w + g.pad_start[1] + g.pad_end[1];
        let wq = wp.div_ceil(sw);
        // One spare row: the wide layout reads whole `wq`-wide rows, so the last output
        // row of a tap may run up to `wq - 1` values past the plane's last pixel.
        let plane = (hp.div_ceil(sh) + 1) * wq;
        Phases {
            stride: g.stride,
            wq,
            plane,
            out: [g.out_h(), g.out_w()],
            rows_per_block: (BLOCK / wq.max(1)).max(1),
        }
    }

    /// Floats of all the phase planes.
    fn len(&self) -> usize {
        self.stride[0] * self.stride[1] * self.plane
    }

    /// Where padded position `(r, c)` sits.
    fn at(&self, r: usize, c: usize) -> usize {
        let [sh, sw] = self.stride;
        ((r % sh) * sw + c % sw) * self.plane + (r / sh) * self.wq + c / sw
    }

    /// Where each tap's reads start, for output pixel `(0, 0)`.
    fn tap_bases(&self, g: &GeneralGeom) -> Vec<usize> {
        let mut bases = Vec::with_capacity(g.kh * g.kw);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                bases.push(self.at(ki * g.dilation[0], kj * g.dilation[1]));
            }
        }
        bases
    }

    /// Calls `f(row, ih, (k_lo, k_hi), iw)` for every row of every phase plane (`row` is
    /// its offset in the buffer): when the row holds input pixels, `ih` is their input row
    /// and its positions `k_lo..k_hi` hold input columns `iw, iw + stride, ...`; the rest
    /// of the row is padding (all of it when `ih` is `None`).
    fn for_each_row(
        &self,
        g: &GeneralGeom,
        mut f: impl FnMut(usize, Option<usize>, (usize, usize), usize),
    ) {
        let [sh, sw] = self.stride;
        let [top, left] = g.pad_start;
        for a in 0..sh {
            for b in 0..sw {
                let phase = (a * sw + b) * self.plane;
                // Phase columns k hold padded columns k * sw + b; the input's are
                // left..left + w.
                let k_lo = left.saturating_sub(b).div_ceil(sw).min(self.wq);
                let k_hi = (left + g.w).saturating_sub(b).div_ceil(sw).min(self.wq);
                let iw = (k_lo * sw + b).saturating_sub(left);
                for q in 0..self.plane / self.wq.max(1) {
                    let ih = (q * sh + a).checked_sub(top).filter(|&ih| ih < g.h);
                    f(phase + q * self.wq, ih, (k_lo, k_hi.max(k_lo)), iw);
                }
            }
        }
    }

    /// Lays a group's input plane out in phase planes, padding included.
    fn fill(&self, g: &GeneralGeom, x_g: &[f32], buf: &mut [f32]) {
        let sw = self.stride[1];
        self.for_each_row(g, |at, ih, (lo, hi), iw| {
            let row = &mut buf[at..at + self.wq];
            let Some(ih) = ih else {
                return row.fill(0.0);
            };
            row[..lo].fill(0.0);
            row[hi..].fill(0.0);
            if lo == hi {
                return; // no input column falls in this phase
            }
            let src = &x_g[ih * g.w + iw..(ih + 1) * g.w];
            if sw == 1 {
                row[lo..hi].copy_from_slice(&src[..hi - lo]);
            } else {
                let run = src.iter().step_by(sw);
                row[lo..hi].iter_mut().zip(run).for_each(|(d, &s)| *d = s);
            }
        });
    }

    /// Adds the input pixels of phase planes onto a group's input plane (the adjoint of
    /// [`Self::fill`]; padding is dropped).
    fn gather_add(&self, g: &GeneralGeom, buf: &[f32], gx_g: &mut [f32]) {
        let sw = self.stride[1];
        self.for_each_row(g, |at, ih, (lo, hi), iw| {
            let Some(ih) = ih.filter(|_| lo < hi) else {
                return;
            };
            let src = &buf[at + lo..at + hi];
            let dst = &mut gx_g[ih * g.w + iw..(ih + 1) * g.w];
            if sw == 1 {
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
            } else {
                let run = dst.iter_mut().step_by(sw);
                run.zip(src).for_each(|(d, &s)| *d += s);
            }
        });
    }

    /// The blocks of output rows: `(first row, rows)`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (oh_n, step) = (self.out[0], self.rows_per_block);
        (0..oh_n)
            .step_by(step)
            .map(move |r0| (r0, step.min(oh_n - r0)))
    }
}

/// Runs `f(group, chunk, phases, wide)` for every group's chunk of `data` (`chunk` floats
/// each), over threads when the sample is worth splitting and splitting is allowed here.
fn per_group(
    g: &GeneralGeom,
    data: &mut [f32],
    chunk: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>, &mut Vec<f32>) + Sync + Send,
) {
    let work = g.c_out * g.kh * g.kw * g.p_dim();
    let data = &mut data[..g.groups * chunk];
    if chunk == 0 {
        return;
    }
    if g.groups > 1 && work >= PAR_MIN_WORK && may_split() {
        let chunks = data.par_chunks_mut(chunk).enumerate();
        chunks.for_each(|(gi, c)| as_task(|| with_scratch(|a, b| f(gi, c, a, b))));
    } else {
        with_scratch(|a, b| {
            data.chunks_mut(chunk)
                .enumerate()
                .for_each(|(gi, c)| f(gi, c, a, b))
        });
    }
}

/// `dst += sum_j w[j] * src(j)` over one kernel row's taps: for the common widths 3 and 5
/// the taps are added in one pass, which loads and stores `dst` once instead of once per
/// tap (the loop is bound by memory traffic, not arithmetic).
fn add_kernel_row<'a>(dst: &mut [f32], w: &[f32], src: impl Fn(usize) -> &'a [f32]) {
    match *w {
        [w0, w1, w2] => {
            let (s0, s1, s2) = (src(0), src(1), src(2));
            let each = dst.iter_mut().zip(s0).zip(s1).zip(s2);
            each.for_each(|(((d, a), b), c)| *d += w0 * a + w1 * b + w2 * c);
        }
        [w0, w1, w2, w3, w4] => {
            let (s0, s1, s2, s3, s4) = (src(0), src(1), src(2), src(3), src(4));
            let each = dst.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3).zip(s4);
            each.for_each(|(((((d, a), b), c), e), f)| {
                *d += w0 * a + w1 * b + w2 * c + w3 * e + w4 * f;
            });
        }
        _ => {
            for (j, &wv) in w.iter().enumerate() {
                axpy(dst, wv, src(j));
            }
        }
    }
}

/// `dst += w * src` over equal lengths (vectorised).
fn axpy(dst: &mut [f32], w: f32, src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += w * s);
}

/// `out_n += conv(x_n, w)` for one sample.
pub(super) fn forward_add(g: &GeneralGeom, x_n: &[f32], w: &[f32], out_n: &mut [f32]) {
    let (hw, p, khw, mult) = (g.h * g.w, g.p_dim(), g.kh * g.kw, g.c_out_g());
    let ph = Phases::new(g);
    let (bases, [_, ow_n], wq) = (ph.tap_bases(g), ph.out, ph.wq);
    per_group(g, out_n, mult * p, |gi, out_g, planes, wide| {
        let planes = sized(planes, ph.len());
        ph.fill(g, &x_n[gi * hw..(gi + 1) * hw], planes);
        for j in 0..mult {
            let taps = &w[(gi * mult + j) * khw..][..khw];
            let out_j = &mut out_g[j * p..(j + 1) * p];
            for (r0, rows) in ph.blocks() {
                let len = rows * wq;
                let acc = zeroed(wide, len);
                let at = |tap: usize| &planes[bases[tap] + r0 * wq..][..len];
                for ki in 0..g.kh {
                    add_kernel_row(acc, &taps[ki * g.kw..][..g.kw], |kj| at(ki * g.kw + kj));
                }
                for r in 0..rows {
                    let dst = &mut out_j[(r0 + r) * ow_n..][..ow_n];
                    dst.iter_mut()
                        .zip(&acc[r * wq..])
                        .for_each(|(d, &s)| *d += s);
                }
            }
        }
    });
}

/// Spreads output rows `r0..r0 + rows` of `go_j` into the wide layout (`wq` per row, zeros
/// in the extra columns, so that they add nothing anywhere).
fn spread(go_j: &[f32], (r0, rows): (usize, usize), ow_n: usize, wq: usize, wide: &mut Vec<f32>) {
    let wide = zeroed(wide, rows * wq);
    for r in 0..rows {
        wide[r * wq..][..ow_n].copy_from_slice(&go_j[(r0 + r) * ow_n..][..ow_n]);
    }
}

/// `gx_n += J_w^T(go_n)` for one sample.
pub(super) fn input_vjp_add(g: &GeneralGeom, go_n: &[f32], w: &[f32], gx_n: &mut [f32]) {
    let (hw, p, khw, mult) = (g.h * g.w, g.p_dim(), g.kh * g.kw, g.c_out_g());
    let ph = Phases::new(g);
    let (bases, [_, ow_n], wq) = (ph.tap_bases(g), ph.out, ph.wq);
    per_group(g, gx_n, hw, |gi, gx_g, planes, wide| {
        let planes = zeroed(planes, ph.len());
        for j in 0..mult {
            let taps = &w[(gi * mult + j) * khw..][..khw];
            let go_j = &go_n[(gi * mult + j) * p..][..p];
            for block in ph.blocks() {
                spread(go_j, block, ow_n, wq, wide);
                let len = block.1 * wq;
                for (&wv, &base) in taps.iter().zip(&bases) {
                    axpy(&mut planes[base + block.0 * wq..][..len], wv, &wide[..len]);
                }
            }
        }
        ph.gather_add(g, planes, gx_g);
    });
}

/// `gw += ` one sample's weight gradient.
pub(super) fn weight_grad_add(g: &GeneralGeom, x_n: &[f32], go_n: &[f32], gw: &mut [f32]) {
    let (hw, p, khw, mult) = (g.h * g.w, g.p_dim(), g.kh * g.kw, g.c_out_g());
    let ph = Phases::new(g);
    let (bases, [_, ow_n], wq) = (ph.tap_bases(g), ph.out, ph.wq);
    per_group(g, gw, mult * khw, |gi, gw_g, planes, wide| {
        let planes = sized(planes, ph.len());
        ph.fill(g, &x_n[gi * hw..(gi + 1) * hw], planes);
        for j in 0..mult {
            let go_j = &go_n[(gi * mult + j) * p..][..p];
            for block in ph.blocks() {
                spread(go_j, block, ow_n, wq, wide);
                let len = block.1 * wq;
                for (acc, &base) in gw_g[j * khw..][..khw].iter_mut().zip(&bases) {
                    *acc += dot(&wide[..len], &planes[base + block.0 * wq..][..len]);
                }
            }
        }
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
