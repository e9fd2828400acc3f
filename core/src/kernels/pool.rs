//! 2-D max and average pooling on NCHW slices.
//!
//! Every `(n, c)` plane is independent, so each kernel walks the planes
//! (over rayon threads once the tensor is large enough to pay for it) and,
//! within a plane, visits each output cell's window clipped to the real
//! input: padding cells never enter a max (they act as `-inf`, as in
//! PyTorch) and count as zeros in an average, which always divides by
//! `kh * kw` (`count_include_pad = true`, PyTorch's default). Max pooling
//! records, for each output, the flat index into the whole input tensor of
//! the first maximal element in row-major window order (a NaN wins over any
//! number, and the first NaN wins among NaNs, so NaNs propagate); its
//! backward pass zeroes the input gradient and adds each output gradient at
//! that index. Average pooling's backward spreads `grad / (kh * kw)` over
//! the real cells of each window. Overlapping windows (stride < kernel)
//! accumulate correctly because each plane is owned by one thread.

use rayon::prelude::*;

/// Geometry of a 2-D pooling. `stride` and `padding` are `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `[along h, along w]`, each >= 1.
    pub stride: [usize; 2],
    /// Zero padding `[top/bottom, left/right]`.
    pub padding: [usize; 2],
}

impl Pool2dGeom {
    /// `(h + 2 * padding[0] - kh) / stride[0] + 1`; callers guarantee
    /// `h + 2 * padding[0] >= kh` and `stride[0] >= 1`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1
    }

    /// `(w + 2 * padding[1] - kw) / stride[1] + 1`; same preconditions.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1
    }

    fn planes(&self) -> usize {
        self.n * self.c
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Whether the work is big enough to spread the planes over threads.
    fn parallel(&self) -> bool {
        self.planes() > 1
            && self.planes() * self.out_plane() * self.kh * self.kw >= 1 << 15
            && super::split::may_split()
    }

    /// Clipped input ranges `(rows, cols)` of the window of output `(oh, ow)`.
    fn window(&self, oh: usize, ow: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let clip = |o: usize, k: usize, s: usize, p: usize, len: usize| {
            let lo = o * s;
            lo.saturating_sub(p)..(lo + k).saturating_sub(p).min(len)
        };
        (
            clip(oh, self.kh, self.stride[0], self.padding[0], self.h),
            clip(ow, self.kw, self.stride[1], self.padding[1], self.w),
        )
    }
}

/// Runs `f(plane, dst_chunk, src_chunk)` on matching plane chunks, in
/// parallel when `par`. Does nothing when a chunk size is zero.
fn planes_zip<D: Send, S: Sync>(
    par: bool,
    planes: usize,
    (dst, dst_sz): (&mut [D], usize),
    (src, src_sz): (&[S], usize),
    f: impl Fn(usize, &mut [D], &[S]) + Sync + Send,
) {
    if dst_sz == 0 || src_sz == 0 || planes == 0 {
        return;
    }
    let dst = &mut dst[..planes * dst_sz];
    let src = &src[..planes * src_sz];
    if par {
        dst.par_chunks_mut(dst_sz)
            .zip(src.par_chunks(src_sz))
            .enumerate()
            .for_each(|(i, (d, s))| f(i, d, s));
    } else {
        dst.chunks_mut(dst_sz)
            .zip(src.chunks(src_sz))
            .enumerate()
            .for_each(|(i, (d, s))| f(i, d, s));
    }
}

/// max over each window (padding cells are ignored, i.e. -inf, like PyTorch); `argmax[i]` = flat index into x (within the whole tensor) of the winner; first maximum wins on ties.
pub fn max_pool2d_forward(g: &Pool2dGeom, x: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    let (ip, op, ow_n) = (g.in_plane(), g.out_plane(), g.out_w());
    assert!(
        g.planes() * ip <= u32::MAX as usize + 1,
        "max_pool2d: input too large for u32 argmax indices"
    );
    if op == 0 || g.planes() == 0 {
        return;
    }
    let out = &mut out[..g.planes() * op];
    let argmax = &mut argmax[..g.planes() * op];
    // The zoo's 2x2, stride-2, unpadded window: fixed offsets, no clipping per output.
    let two_by_two = g.kh == 2 && g.kw == 2 && g.stride == [2, 2] && g.padding == [0, 0];
    let run = |(plane, (o, a)): (usize, (&mut [f32], &mut [u32]))| {
        let base = plane * ip;
        let xp = &x[base..base + ip];
        if two_by_two {
            // Branch-free: which of four random values wins is unpredictable, and a
            // mispredicted branch per comparison cost more than the rest of the pass.
            // Window cell k (0..4, row-major) sits at offset (k & 1) + (k >> 1) * w.
            // `|` (not `||`) and selects keep the loop free of branches.
            let w32 = g.w as u32; // indices fit in u32: checked above
            for (oh, (orow, arow)) in o.chunks_mut(ow_n).zip(a.chunks_mut(ow_n)).enumerate() {
                let (r0, r1) = (2 * oh * g.w, (2 * oh + 1) * g.w);
                let (top, bottom) = (&xp[r0..r0 + 2 * ow_n], &xp[r1..r1 + 2 * ow_n]);
                let first = (base + r0) as u32;
                for ow in 0..ow_n {
                    let (mut best, mut k) = (top[2 * ow], 0u32);
                    for (v, kv) in [
                        (top[2 * ow + 1], 1),
                        (bottom[2 * ow], 2),
                        (bottom[2 * ow + 1], 3),
                    ] {
                        let take = (v > best) | (v.is_nan() & !best.is_nan());
                        best = if take { v } else { best };
                        k = if take { kv } else { k };
                    }
                    orow[ow] = best;
                    arow[ow] = first + 2 * ow as u32 + (k & 1) + (k >> 1) * w32;
                }
            }
            return;
        }
        for (idx, (ov, av)) in o.iter_mut().zip(a.iter_mut()).enumerate() {
            let (rows, cols) = g.window(idx / ow_n, idx % ow_n);
            let mut best = f32::NEG_INFINITY;
            let mut arg = rows.start * g.w + cols.start;
            for ih in rows {
                for iw in cols.clone() {
                    let v = xp[ih * g.w + iw];
                    if v > best || (v.is_nan() && !best.is_nan()) {
                        best = v;
                        arg = ih * g.w + iw;
                    }
                }
            }
            *ov = best;
            *av = (base + arg) as u32;
        }
    };
    if g.parallel() {
        let chunks = out.par_chunks_mut(op).zip(argmax.par_chunks_mut(op));
        chunks.enumerate().for_each(run);
    } else {
        out.chunks_mut(op)
            .zip(argmax.chunks_mut(op))
            .enumerate()
            .for_each(run);
    }
}

/// grad_x (overwritten with zeros first) += grad_out routed to the winners.
pub fn max_pool2d_backward(g: &Pool2dGeom, grad_out: &[f32], argmax: &[u32], grad_x: &mut [f32]) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let grad_x = &mut grad_x[..g.planes() * ip];
    grad_x.fill(0.0);
    let grad_out = &grad_out[..g.planes() * op];
    planes_zip(
        g.parallel(),
        g.planes(),
        (grad_x, ip),
        (argmax, op),
        |plane, gx, am| {
            let base = plane * ip;
            let go = &grad_out[plane * op..(plane + 1) * op];
            for (&a, &gv) in am.iter().zip(go) {
                // Winners lie in their own plane; anything else panics here.
                gx[(a as usize).wrapping_sub(base)] += gv;
            }
        },
    );
}

/// average with count_include_pad = true (divide by kh*kw always), like PyTorch's default.
pub fn avg_pool2d_forward(g: &Pool2dGeom, x: &[f32], out: &mut [f32]) {
    let (ip, op, ow_n) = (g.in_plane(), g.out_plane(), g.out_w());
    let inv = 1.0 / (g.kh * g.kw) as f32;
    planes_zip(g.parallel(), g.planes(), (out, op), (x, ip), |_, o, xp| {
        for (idx, ov) in o.iter_mut().enumerate() {
            let (rows, cols) = g.window(idx / ow_n, idx % ow_n);
            let mut sum = 0.0f32;
            for ih in rows {
                sum += xp[ih * g.w + cols.start..ih * g.w + cols.end]
                    .iter()
                    .sum::<f32>();
            }
            *ov = sum * inv;
        }
    });
}

/// Input gradient of [`avg_pool2d_forward`]; grad_x is overwritten.
pub fn avg_pool2d_backward(g: &Pool2dGeom, grad_out: &[f32], grad_x: &mut [f32]) {
    let (ip, op, ow_n) = (g.in_plane(), g.out_plane(), g.out_w());
    let inv = 1.0 / (g.kh * g.kw) as f32;
    let grad_x = &mut grad_x[..g.planes() * ip];
    grad_x.fill(0.0);
    planes_zip(
        g.parallel(),
        g.planes(),
        (grad_x, ip),
        (grad_out, op),
        |_, gx, go| {
            for (idx, &gv) in go.iter().enumerate() {
                let (rows, cols) = g.window(idx / ow_n, idx % ow_n);
                let v = gv * inv;
                for ih in rows {
                    gx[ih * g.w + cols.start..ih * g.w + cols.end]
                        .iter_mut()
                        .for_each(|d| *d += v);
                }
            }
        },
    );
}
