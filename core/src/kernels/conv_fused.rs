//! A convolution's forward pass, an elementwise map against a given signal, and the
//! input-weighted transposed convolution, fused per sample:
//!
//! `out_n = x_n * J^T( f(r_n, conv(x_n, w) + b) )`
//!
//! where `J^T` is the convolution's input VJP with the same `w`. Reweighted backward
//! passes have this shape (an LRP rule's branch: recompute `z` with modified weights,
//! divide the incoming relevance by it, pass the ratio back, multiply by the input).
//! Done op by op, `z`, the ratio and the VJP are each a batch-sized tensor written to
//! memory and read back; here one sample's intermediates stay in the cache, and its
//! im2col matrix serves both products (the receptive fields are built once, then the
//! same buffer takes the transposed product that col2im scatters).
//!
//! [`conv2d_weighted_input_grads`] is the other half alone, for several terms: a signal
//! formed a sample at a time by the caller, then `sum_b factor_b * x_b * J_b^T(s)` (ZBox's
//! three branches share one denominator and each takes its own transposed product).

use super::conv::{
    cols_len, for_each_sample, forward_sample, input_vjp_sample, scratch_of, weight_operand,
    Conv2dGeom, WeightOperand,
};

/// `out[n] = x[n] * J^T(f(r[n], conv(x[n], w) + b))` for every sample (see the module
/// docs); `r` has the convolution's output shape, `out` the input's. `out` is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_map_backward(
    g: &Conv2dGeom,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    r: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
    out: &mut [f32],
) {
    let w = &w[..g.c_out * g.k_dim()];
    let (wt, transposed) = weight_operand(g, w);
    let wt = (&*wt, transposed);
    match super::conv_bands::bands(g) {
        Some(bands) => {
            super::conv_bands::forward_map_backward(g, &bands, x, (w, wt), b, r, &f, out)
        }
        None => each_sample(g, x, (w, wt), b, r, f, out),
    }
}

/// [`conv2d_forward_map_backward`] a sample at a time (samples spread over threads),
/// given `W` and the forward operand (see [`weight_operand`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn each_sample(
    g: &Conv2dGeom,
    x: &[f32],
    (w, wt): (&[f32], WeightOperand),
    b: Option<&[f32]>,
    r: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
    out: &mut [f32],
) {
    let (x_sz, o_sz) = (g.c_in * g.h * g.w, g.c_out * g.p_dim());
    let b = b.map(|b| &b[..g.c_out]);
    // The forward product takes the operand chosen by `weight_operand`; the transposed
    // product reads W itself, transposed by stride.
    for_each_sample(g.n, out, x_sz, |i, out_n, scratch| {
        let x_n = &x[i * x_sz..(i + 1) * x_sz];
        let r_n = &r[i * o_sz..(i + 1) * o_sz];
        let buf = scratch_of(scratch, cols_len(g) + o_sz);
        let (cols, z) = buf.split_at_mut(cols_len(g));
        // z = W cols + b, then the map against r in place.
        forward_sample(g, x_n, wt, b, cols, z);
        z.iter_mut().zip(r_n).for_each(|(z, &r)| *z = f(r, *z));
        // J^T: W^T s into the im2col-shaped buffer, scattered back by col2im.
        input_vjp_sample(g, z, w, cols, out_n);
        out_n.iter_mut().zip(x_n).for_each(|(o, &x)| *o *= x);
    });
}

/// One term of [`conv2d_weighted_input_grads`]: `factor * x ⊙ J_w^T(s)`.
pub struct WeightedVjp<'a> {
    /// The convolution weight `[c_out, c_in, kh, kw]`.
    pub w: &'a [f32],
    /// What the VJP is multiplied by: the batch's input (`n * c_in * h * w` values) or one
    /// sample's worth (`c_in * h * w`) used for every sample.
    pub x: &'a [f32],
    /// A scalar weight of the term.
    pub factor: f32,
}

/// `out[n] = sum_b factor_b * x_b[n] ⊙ J_{w_b}^T(s[n])`, where each sample's `s[n]` (the
/// convolution's output shape) is written by `s_of(n, s_n)`, so a batch-sized `s` is never
/// stored: a rule whose denominator is cheap to form elementwise (ZBox: the recorded output
/// minus per-sample constants) divides, transposes and weights a sample at a time, in the
/// cache. Terms are added in order, each as `x * g * factor`. `out` is overwritten.
pub fn conv2d_weighted_input_grads(
    g: &Conv2dGeom,
    s_of: impl Fn(usize, &mut [f32]) + Sync + Send,
    terms: &[WeightedVjp],
    out: &mut [f32],
) {
    let (kd, p) = (g.k_dim(), g.p_dim());
    let (x_sz, o_sz) = (g.c_in * g.h * g.w, g.c_out * p);
    for_each_sample(g.n, out, x_sz, |i, out_n, scratch| {
        let buf = scratch_of(scratch, o_sz + cols_len(g) + x_sz);
        let (s_n, rest) = buf.split_at_mut(o_sz);
        let (cols, vjp) = rest.split_at_mut(cols_len(g));
        s_of(i, s_n);
        for (t, term) in terms.iter().enumerate() {
            input_vjp_sample(g, s_n, &term.w[..g.c_out * kd], cols, vjp);
            let x_n = if term.x.len() == x_sz {
                term.x
            } else {
                &term.x[i * x_sz..(i + 1) * x_sz]
            };
            let f = term.factor;
            let each = out_n.iter_mut().zip(x_n.iter().zip(vjp.iter()));
            if t == 0 {
                each.for_each(|(o, (&x, &g))| *o = x * g * f);
            } else {
                each.for_each(|(o, (&x, &g))| *o += x * g * f);
            }
        }
        if terms.is_empty() {
            out_n.fill(0.0);
        }
    });
}
