//! Depthwise convolution (one input channel per group, any channel multiplier) by direct
//! loops over the kernel taps. With one input channel a group's im2col matrix has only
//! `kh * kw` rows, so an im2col + GEMM would spend its time laying data out and packing
//! tiny operands; here each tap is one scaled, strided row update per output row.

use super::conv_general::{span, GeneralGeom};

/// Calls `f(oc, c, tap, oh, (lo, hi), src)` for every output channel `oc` (reading input
/// channel `c`), kernel tap `tap = ki * kw + kj` and output row `oh` whose input row is in
/// bounds: output columns `lo..hi` of that row read the input plane from offset `src` on,
/// every `stride[1]`-th value.
fn for_each_tap(
    g: &GeneralGeom,
    mut f: impl FnMut(usize, usize, usize, usize, (usize, usize), usize),
) {
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let ([sh, sw], [dh, dwl], [pt, pl]) = (g.stride, g.dilation, g.pad_start);
    let mult = g.c_out_g();
    for oc in 0..g.c_out {
        let c = oc / mult;
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = span(oh_n, g.h, ki * dh, sh, pt);
            for kj in 0..g.kw {
                let (lo, hi) = span(ow_n, g.w, kj * dwl, sw, pl);
                if lo == hi {
                    continue;
                }
                for oh in oh_lo..oh_hi {
                    // In bounds by construction of the spans.
                    let ih = oh * sh + ki * dh - pt;
                    let src = ih * g.w + lo * sw + kj * dwl - pl;
                    f(oc, c, ki * g.kw + kj, oh, (lo, hi), src);
                }
            }
        }
    }
}

/// `out_n += conv(x_n, w)` for one sample.
pub(super) fn forward_add(g: &GeneralGeom, x_n: &[f32], w: &[f32], out_n: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    for_each_tap(g, |oc, c, tap, oh, (lo, hi), src| {
        let wv = w[oc * khw + tap];
        let dst = &mut out_n[oc * p + oh * ow_n..][lo..hi];
        let xs = x_n[c * hw + src..].iter().step_by(sw);
        dst.iter_mut().zip(xs).for_each(|(d, x)| *d += wv * x);
    });
}

/// `gx_n += J_w^T(go_n)` for one sample.
pub(super) fn input_vjp_add(g: &GeneralGeom, go_n: &[f32], w: &[f32], gx_n: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    for_each_tap(g, |oc, c, tap, oh, (lo, hi), src| {
        let wv = w[oc * khw + tap];
        let gos = &go_n[oc * p + oh * ow_n..][lo..hi];
        let dst = gx_n[c * hw + src..].iter_mut().step_by(sw);
        dst.zip(gos).for_each(|(d, go)| *d += wv * go);
    });
}

/// `gw += ` one sample's weight gradient.
pub(super) fn weight_grad_add(g: &GeneralGeom, x_n: &[f32], go_n: &[f32], gw: &mut [f32]) {
    let (hw, p, ow_n, khw, sw) = (g.h * g.w, g.p_dim(), g.out_w(), g.kh * g.kw, g.stride[1]);
    for_each_tap(g, |oc, c, tap, oh, (lo, hi), src| {
        let gos = &go_n[oc * p + oh * ow_n..][lo..hi];
        let xs = x_n[c * hw + src..].iter().step_by(sw);
        gw[oc * khw + tap] += gos.iter().zip(xs).map(|(go, x)| go * x).sum::<f32>();
    });
}
