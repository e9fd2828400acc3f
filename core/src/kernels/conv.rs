//! 2-D convolution (cross-correlation, NCHW, weights `[c_out, c_in, kh, kw]`)
//! by im2col + GEMM, one sample at a time.
//!
//! im2col lays a sample's receptive fields out as a `[K, P]` matrix
//! (`K = c_in * kh * kw`, `P = out_h * out_w`, padding cells zero), so the
//! forward pass is `out_n = W * cols` (bias written first, accumulated with
//! `beta = 1`; `W` is transposed once per call so matrixmultiply can pack it
//! with contiguous copies), and the input gradient is `cols = W^T *
//! grad_out_n` scattered back by col2im. The weight gradient contracts over
//! pixels, and both `grad_out_n` and `cols` are pixel-contiguous, the slow
//! element-by-element packing case of matrixmultiply; so unless the sample
//! has a single input channel, it is done pixel-major instead: the sample is
//! transposed to HWC, im2col'ed as `[P, K]` (contiguous `kw * c_in` runs),
//! and the product accumulates into a `[c_out, kh, kw, c_in]` buffer permuted
//! at the end (1.3-1.5x faster on the LeNet/VGG layers). `grad_out_n` is left
//! as it is: matrixmultiply packs its `c_out` rows by stride about as fast as a
//! transpose would, and the transpose was an extra pass (5-7% of the VGG weight
//! gradients). A 1x1, stride-1, unpadded convolution skips
//! im2col/col2im. With several samples the batch is split across rayon
//! threads, each reusing its own scratch (kept per thread across calls)
//! while the GEMMs run single-threaded; a single sample lets the
//! GEMM split itself across threads instead. The weight gradient sums
//! partials over a fixed number of chunks in a fixed order, so it depends on
//! neither scheduling nor the number of threads.

use super::conv_bands;
use super::gemm::gemm;
use super::im2col::{col2im_add, im2col, im2col_pixel_major, sum, transpose};
use super::split::{as_task, may_split};
use rayon::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;

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
    pub(super) fn k_dim(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Columns of the im2col matrix: `out_h * out_w`.
    pub(super) fn p_dim(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// True when im2col is the identity (1x1 kernel, stride 1, no padding).
    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

thread_local! {
    /// Each thread's im2col scratch, kept from call to call: an im2col matrix is about
    /// a megabyte, and allocating it afresh for every call paid for new zeroed pages
    /// from the kernel each time.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch (a fresh one if it is already in use).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut v) => f(&mut v),
        Err(_) => f(&mut Vec::new()),
    })
}

/// Runs `f(sample, out_chunk, scratch)` for every sample, over rayon threads
/// when there are several samples, or serially otherwise (the GEMM inside
/// then parallelises itself).
pub(super) fn for_each_sample<F>(n: usize, out: &mut [f32], chunk: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync + Send,
{
    if chunk == 0 || n == 0 {
        return;
    }
    let out = &mut out[..n * chunk];
    if n == 1 || !may_split() {
        with_scratch(|scratch| {
            out.chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, o)| f(i, o, scratch))
        });
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, o)| as_task(|| with_scratch(|scratch| f(i, o, scratch))));
    }
}

/// Returns `scratch` resized to `len` (contents unspecified).
pub(super) fn scratch_of(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    &mut scratch[..len]
}

pub(super) const SHAPES_OK: &str = "conv: slice lengths were fixed by slicing";

/// `out[n, c_out, oh, ow] = sum w * x (+ b[c_out])`
pub fn conv2d_forward(g: &Conv2dGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    let b = b.map(|b| &b[..g.c_out]);
    let (wt, transposed) = weight_operand(g, w);
    let wt = (&*wt, transposed);
    match conv_bands::bands(g) {
        Some(bands) => conv_bands::forward(g, &bands, x, wt, b, out),
        None => forward_samples(g, x, wt, b, out),
    }
}

/// The left operand of the forward GEMM and whether it is transposed: `W^T [K, c_out]`,
/// transposed once per call so that matrixmultiply packs it with contiguous copies as
/// often as the wide im2col matrix makes it; or, for a pointwise convolution, `W` as it
/// is: its GEMM packs W about once, so a transposition would cost as much as it saves.
pub(super) fn weight_operand<'a>(g: &Conv2dGeom, w: &'a [f32]) -> (Cow<'a, [f32]>, bool) {
    let kd = g.k_dim();
    let w = &w[..g.c_out * kd];
    if g.pointwise() {
        return (Cow::Borrowed(w), false);
    }
    let mut wt = vec![0.0f32; g.c_out * kd];
    transpose(w, g.c_out, kd, &mut wt);
    (Cow::Owned(wt), true)
}

/// The forward GEMM's left operand: the weights and whether they are stored transposed
/// (see [`weight_operand`]).
pub(super) type WeightOperand<'a> = (&'a [f32], bool);

/// [`conv2d_forward`] a sample at a time, given `W^T`.
pub(super) fn forward_samples(
    g: &Conv2dGeom,
    x: &[f32],
    wt: WeightOperand,
    b: Option<&[f32]>,
    out: &mut [f32],
) {
    let x_sz = g.c_in * g.h * g.w;
    for_each_sample(g.n, out, g.c_out * g.p_dim(), |i, out_n, scratch| {
        let x_n = &x[i * x_sz..(i + 1) * x_sz];
        forward_sample(g, x_n, wt, b, scratch_of(scratch, cols_len(g)), out_n);
    });
}

/// Floats of one sample's im2col matrix: none for a pointwise convolution, whose im2col
/// matrix is the sample itself.
pub(super) fn cols_len(g: &Conv2dGeom) -> usize {
    if g.pointwise() {
        0
    } else {
        g.k_dim() * g.p_dim()
    }
}

/// One sample's im2col matrix: the sample itself when pointwise, else built in `buf`
/// ([`cols_len`] floats).
fn cols_of<'a>(g: &Conv2dGeom, x_n: &'a [f32], buf: &'a mut [f32]) -> &'a [f32] {
    if g.pointwise() {
        x_n
    } else {
        im2col(g, x_n, buf);
        buf
    }
}

/// One sample's `out_n = W cols + b`, given `W^T`, with its im2col matrix built in `buf`
/// ([`cols_len`] floats).
pub(super) fn forward_sample(
    g: &Conv2dGeom,
    x_n: &[f32],
    (wt, transposed): WeightOperand,
    b: Option<&[f32]>,
    buf: &mut [f32],
    out_n: &mut [f32],
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let cols = cols_of(g, x_n, buf);
    let beta = fill_bias(out_n, b, p);
    gemm(
        g.c_out, kd, p, 1.0, wt, transposed, cols, false, beta, out_n,
    )
    .expect(SHAPES_OK);
}

/// Writes the bias into every output row (the GEMM then accumulates onto it with
/// `beta = 1`); returns the GEMM's `beta`.
fn fill_bias(out_n: &mut [f32], b: Option<&[f32]>, p: usize) -> f32 {
    match b {
        Some(b) => {
            for (row, &bv) in out_n.chunks_exact_mut(p).zip(b) {
                row.fill(bv);
            }
            1.0
        }
        None => 0.0,
    }
}

/// grad_x = transposed convolution of grad_out with w (the input VJP). grad_x is overwritten.
pub fn conv2d_backward_input(g: &Conv2dGeom, grad_out: &[f32], w: &[f32], grad_x: &mut [f32]) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let o_sz = g.c_out * p;
    let w = &w[..g.c_out * kd];
    if let Some(bands) = conv_bands::bands(g) {
        return conv_bands::backward_input(g, &bands, grad_out, w, grad_x);
    }
    for_each_sample(g.n, grad_x, g.c_in * g.h * g.w, |i, gx_n, scratch| {
        let go_n = &grad_out[i * o_sz..(i + 1) * o_sz];
        input_vjp_sample(g, go_n, w, scratch_of(scratch, cols_len(g)), gx_n);
    });
}

/// One sample's input VJP `gx_n = J_w^T(go_n)` (overwritten): `W^T go_n` into `cols`
/// ([`cols_len`] floats), scattered back by col2im; a pointwise convolution writes the
/// product straight into `gx_n`.
pub(super) fn input_vjp_sample(
    g: &Conv2dGeom,
    go_n: &[f32],
    w: &[f32],
    cols: &mut [f32],
    gx_n: &mut [f32],
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    if g.pointwise() {
        gemm(kd, g.c_out, p, 1.0, w, true, go_n, false, 0.0, gx_n).expect(SHAPES_OK);
    } else {
        gemm(kd, g.c_out, p, 1.0, w, true, go_n, false, 0.0, cols).expect(SHAPES_OK);
        gx_n.fill(0.0);
        col2im_add(g, cols, gx_n);
    }
}

/// Whether the weight gradient uses pixel-major operands (see
/// [`backward_weight_sample`]).
fn bw_pixel_major(g: &Conv2dGeom) -> bool {
    // Measured: pays off from LeNet's 6-channel 5x5 layer up; with one input
    // channel the pixel-major runs are too short to beat strided packing.
    g.c_in * g.kw >= 8
}

/// Adds one sample's contribution to `gw` and `gb[c_out]`.
///
/// The weight gradient contracts over pixels, and both `grad_out_n
/// [c_out, P]` and the im2col matrix `[K, P]` are pixel-contiguous, which is
/// the slow (element-by-element) packing case of matrixmultiply. When the
/// receptive field rows are long enough ([`bw_pixel_major`]) the sample is
/// instead transposed to HWC and im2col'ed pixel-major with contiguous runs, so
/// that operand packs with contiguous copies; `gw` is then laid out
/// `[c_out, kh, kw, c_in]`.
fn backward_weight_sample(
    g: &Conv2dGeom,
    x_n: &[f32],
    go_n: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    if let Some(gb) = gb {
        for (acc, row) in gb.iter_mut().zip(go_n.chunks_exact(p)) {
            *acc += sum(row);
        }
    }
    if !bw_pixel_major(g) {
        let cols = cols_of(g, x_n, scratch_of(scratch, cols_len(g)));
        gemm(g.c_out, p, kd, 1.0, go_n, false, cols, true, 1.0, gw).expect(SHAPES_OK);
        return;
    }
    let hw = g.h * g.w;
    let xt_len = if g.c_in > 1 { x_n.len() } else { 0 };
    let buf = scratch_of(scratch, xt_len + cols_len(g));
    let (xt_buf, cols_buf) = buf.split_at_mut(xt_len);
    let xt: &[f32] = if g.c_in > 1 {
        transpose(x_n, g.c_in, hw, xt_buf);
        xt_buf
    } else {
        x_n
    };
    let cols_t: &[f32] = if g.pointwise() {
        xt
    } else {
        im2col_pixel_major(g, xt, cols_buf);
        cols_buf
    };
    gemm(g.c_out, p, kd, 1.0, go_n, false, cols_t, false, 1.0, gw).expect(SHAPES_OK);
}

/// grad_w (overwritten) = sum over batch of grad_out (x) im2col(x); grad_b (overwritten) = sum of grad_out over n, oh, ow.
pub fn conv2d_backward_weight(
    g: &Conv2dGeom,
    x: &[f32],
    grad_out: &[f32],
    grad_w: &mut [f32],
    grad_b: Option<&mut [f32]>,
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let (x_sz, o_sz, w_sz) = (g.c_in * g.h * g.w, g.c_out * p, g.c_out * kd);
    let grad_w = &mut grad_w[..w_sz];
    let grad_b = grad_b.map(|gb| &mut gb[..g.c_out]);
    let sample = |i: usize| {
        (
            &x[i * x_sz..(i + 1) * x_sz],
            &grad_out[i * o_sz..(i + 1) * o_sz],
        )
    };
    // A fixed number of chunks (not one per thread), each with its own partial sums,
    // reduced in chunk order: the sum is grouped the same way whatever the thread count,
    // so training is bit-identical on 1 or 2 threads. Eight chunks keep two threads
    // balanced on a busy machine; a single sample lets the GEMM split itself.
    const CHUNKS: usize = 8;
    let per_chunk = g.n.div_ceil(CHUNKS).max(1);
    let chunks = g.n.div_ceil(per_chunk);
    let run_chunk = |scratch: &mut Vec<f32>, c: usize| {
        let mut gw = vec![0.0f32; w_sz];
        let mut gb = vec![0.0f32; g.c_out];
        for i in c * per_chunk..((c + 1) * per_chunk).min(g.n) {
            let (x_n, go_n) = sample(i);
            backward_weight_sample(g, x_n, go_n, &mut gw, Some(&mut gb), scratch);
        }
        (gw, gb)
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if chunks <= 1 {
        vec![with_scratch(|scratch| run_chunk(scratch, 0))]
    } else {
        (0..chunks)
            .into_par_iter()
            .map(|c| as_task(|| with_scratch(|scratch| run_chunk(scratch, c))))
            .collect()
    };
    let mut partials = partials.into_iter();
    let (mut gw, mut gb) = partials.next().unwrap_or_default();
    for (pw, pb) in partials {
        gw.iter_mut().zip(&pw).for_each(|(d, s)| *d += *s);
        gb.iter_mut().zip(&pb).for_each(|(d, s)| *d += *s);
    }
    if let Some(d) = grad_b {
        d.copy_from_slice(&gb);
    }
    if bw_pixel_major(g) {
        // [c_out, (kh, kw), c_in] -> [c_out, c_in, (kh, kw)]
        let khw = g.kh * g.kw;
        for (src, dst) in gw.chunks_exact(kd).zip(grad_w.chunks_exact_mut(kd)) {
            transpose(src, khw, g.c_in, dst);
        }
    } else {
        grad_w.copy_from_slice(&gw);
    }
}
