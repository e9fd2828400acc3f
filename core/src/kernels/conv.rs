//! 2-D convolution (cross-correlation, NCHW, weights `[c_out, c_in, kh, kw]`)
//! by im2col + GEMM.
//!
//! For one sample, im2col lays the receptive fields out as a `[K, P]` matrix
//! (`K = c_in * kh * kw` rows, `P = out_h * out_w` columns; padding cells are
//! zeros), so the forward pass is `out_n = W[c_out, K] * cols` (bias written
//! first, then accumulated with `beta = 1`), the input gradient is
//! `cols = W^T * grad_out_n` scattered back with col2im, and the weight
//! gradient is `grad_w += grad_out_n * cols^T`. im2col copies whole output
//! rows at a time: the in-bounds span of every row is computed once, so
//! stride-1 rows are `memcpy`s and padding is a `fill`. A 1x1, stride-1,
//! unpadded convolution skips im2col/col2im altogether (the sample itself is
//! the `[c_in, h*w]` matrix). With more than one sample the batch is split
//! across rayon threads, each reusing one scratch buffer for all its
//! samples (`for_each_init`), and the GEMMs then run single-threaded; with a
//! single sample the GEMM splits itself across threads instead. The weight
//! gradient sums per-chunk partials in a fixed order, so its result does not
//! depend on scheduling.

use super::gemm::gemm;
use rayon::prelude::*;

/// Geometry of a 2-D convolution. `stride` and `padding` are `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `[along h, along w]`, each >= 1.
    pub stride: [usize; 2],
    /// Zero padding `[top/bottom, left/right]`.
    pub padding: [usize; 2],
}

impl Conv2dGeom {
    /// `(h + 2 * padding[0] - kh) / stride[0] + 1`; callers guarantee
    /// `h + 2 * padding[0] >= kh` and `stride[0] >= 1`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1
    }

    /// `(w + 2 * padding[1] - kw) / stride[1] + 1`; same preconditions.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1
    }

    /// Rows of the im2col matrix: `c_in * kh * kw`.
    fn k_dim(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Columns of the im2col matrix: `out_h * out_w`.
    fn p_dim(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// True when im2col is the identity (1x1 kernel, stride 1, no padding).
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

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
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        acc.iter_mut().zip(c).for_each(|(a, x)| *a += *x);
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `cols[K, P]` = receptive fields of one sample `x_n[c_in, h, w]`.
fn im2col(g: &Conv2dGeom, x_n: &[f32], cols: &mut [f32]) {
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
fn col2im_add(g: &Conv2dGeom, cols: &[f32], grad_x_n: &mut [f32]) {
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

/// Runs `f(sample, out_chunk, scratch)` for every sample, over rayon threads
/// when there are several samples (one scratch `Vec` per worker split), or
/// serially otherwise (the GEMM inside then parallelises itself).
fn for_each_sample<F>(n: usize, out: &mut [f32], chunk: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync + Send,
{
    if chunk == 0 || n == 0 {
        return;
    }
    let out = &mut out[..n * chunk];
    if n == 1 || rayon::current_num_threads() == 1 {
        let mut scratch = Vec::new();
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, o)| f(i, o, &mut scratch));
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (i, o)| f(i, o, scratch));
    }
}

/// Returns `scratch` resized to `len` (contents unspecified).
fn scratch_of(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    &mut scratch[..len]
}

const SHAPES_OK: &str = "conv: slice lengths were fixed by slicing";

/// out[n, c_out, oh, ow] = sum w * x (+ b[c_out])
pub fn conv2d_forward(g: &Conv2dGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let x_sz = g.c_in * g.h * g.w;
    let w = &w[..g.c_out * kd];
    let b = b.map(|b| &b[..g.c_out]);
    for_each_sample(g.n, out, g.c_out * p, |i, out_n, scratch| {
        let x_n = &x[i * x_sz..(i + 1) * x_sz];
        let cols: &[f32] = if g.pointwise() {
            x_n
        } else {
            let cols = scratch_of(scratch, kd * p);
            im2col(g, x_n, cols);
            cols
        };
        let beta = match b {
            Some(b) => {
                for (row, &bv) in out_n.chunks_exact_mut(p).zip(b) {
                    row.fill(bv);
                }
                1.0
            }
            None => 0.0,
        };
        gemm(g.c_out, kd, p, 1.0, w, false, cols, false, beta, out_n).expect(SHAPES_OK);
    });
}

/// grad_x = transposed convolution of grad_out with w (the input VJP). grad_x is overwritten.
pub fn conv2d_backward_input(g: &Conv2dGeom, grad_out: &[f32], w: &[f32], grad_x: &mut [f32]) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let o_sz = g.c_out * p;
    let w = &w[..g.c_out * kd];
    for_each_sample(g.n, grad_x, g.c_in * g.h * g.w, |i, gx_n, scratch| {
        let go_n = &grad_out[i * o_sz..(i + 1) * o_sz];
        if g.pointwise() {
            gemm(kd, g.c_out, p, 1.0, w, true, go_n, false, 0.0, gx_n).expect(SHAPES_OK);
        } else {
            let cols = scratch_of(scratch, kd * p);
            gemm(kd, g.c_out, p, 1.0, w, true, go_n, false, 0.0, cols).expect(SHAPES_OK);
            gx_n.fill(0.0);
            col2im_add(g, cols, gx_n);
        }
    });
}

/// Adds one sample's contribution to `gw[c_out, K]` and `gb[c_out]`.
fn backward_weight_sample(
    g: &Conv2dGeom,
    x_n: &[f32],
    go_n: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let cols: &[f32] = if g.pointwise() {
        x_n
    } else {
        let cols = scratch_of(scratch, kd * p);
        im2col(g, x_n, cols);
        cols
    };
    gemm(g.c_out, p, kd, 1.0, go_n, false, cols, true, 1.0, gw).expect(SHAPES_OK);
    if let Some(gb) = gb {
        for (acc, row) in gb.iter_mut().zip(go_n.chunks_exact(p)) {
            *acc += sum(row);
        }
    }
}

/// grad_w (overwritten) = sum over batch of grad_out (x) im2col(x); grad_b (overwritten) = sum of grad_out over n, oh, ow.
pub fn conv2d_backward_weight(
    g: &Conv2dGeom,
    x: &[f32],
    grad_out: &[f32],
    grad_w: &mut [f32],
    mut grad_b: Option<&mut [f32]>,
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let (x_sz, o_sz, w_sz) = (g.c_in * g.h * g.w, g.c_out * p, g.c_out * kd);
    let grad_w = &mut grad_w[..w_sz];
    grad_w.fill(0.0);
    if let Some(gb) = grad_b.as_deref_mut() {
        gb[..g.c_out].fill(0.0);
    }
    let sample = |i: usize| {
        (
            &x[i * x_sz..(i + 1) * x_sz],
            &grad_out[i * o_sz..(i + 1) * o_sz],
        )
    };
    let threads = rayon::current_num_threads();
    if g.n <= 1 || threads == 1 {
        let mut scratch = Vec::new();
        for i in 0..g.n {
            let (x_n, go_n) = sample(i);
            backward_weight_sample(g, x_n, go_n, grad_w, grad_b.as_deref_mut(), &mut scratch);
        }
        return;
    }
    // Fixed chunks (a few per thread, for balance on a busy machine), each
    // with its own partial sums, reduced in chunk order: deterministic for a
    // given thread count.
    let per_chunk = g.n.div_ceil(2 * threads);
    let chunks = g.n.div_ceil(per_chunk);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..chunks)
        .into_par_iter()
        .map_init(Vec::new, |scratch, c| {
            let mut gw = vec![0.0f32; w_sz];
            let mut gb = vec![0.0f32; g.c_out];
            for i in c * per_chunk..((c + 1) * per_chunk).min(g.n) {
                let (x_n, go_n) = sample(i);
                backward_weight_sample(g, x_n, go_n, &mut gw, Some(&mut gb), scratch);
            }
            (gw, gb)
        })
        .collect();
    for (gw, gb) in &partials {
        grad_w.iter_mut().zip(gw).for_each(|(d, s)| *d += *s);
        if let Some(d) = grad_b.as_deref_mut() {
            d.iter_mut().zip(gb).for_each(|(d, s)| *d += *s);
        }
    }
}
