//! Tests of the general convolution kernels (asymmetric padding, dilation, groups,
//! depthwise) against a direct nested-loop definition computed in f64, with tolerances
//! relative to the magnitude of each sum, plus adjoint identities.

use super::conv_fused::WeightedVjp;
use super::conv_general::*;
use super::tests::{abs, assert_close, dot, fill};
use proptest::prelude::*;

/// Calls `f(out index, x index, w index)` for every product term of the convolution
/// whose input cell is in bounds (padding contributes nothing).
fn terms(g: &GeneralGeom, mut f: impl FnMut(usize, usize, usize)) {
    let (cig, cog) = (g.c_in / g.groups, g.c_out / g.groups);
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    for n in 0..g.n {
        for co in 0..g.c_out {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    for cl in 0..cig {
                        let ci = (co / cog) * cig + cl;
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let ih = (oh * g.stride[0] + ki * g.dilation[0]) as isize
                                    - g.pad_start[0] as isize;
                                let iw = (ow * g.stride[1] + kj * g.dilation[1]) as isize
                                    - g.pad_start[1] as isize;
                                if ih < 0 || iw < 0 || ih as usize >= g.h || iw as usize >= g.w {
                                    continue;
                                }
                                let o = ((n * g.c_out + co) * oh_n + oh) * ow_n + ow;
                                let x = ((n * g.c_in + ci) * g.h + ih as usize) * g.w + iw as usize;
                                let w = ((co * cig + cl) * g.kh + ki) * g.kw + kj;
                                f(o, x, w);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn x_len(g: &GeneralGeom) -> usize {
    g.n * g.c_in * g.h * g.w
}

fn w_len(g: &GeneralGeom) -> usize {
    g.c_out * (g.c_in / g.groups) * g.kh * g.kw
}

fn o_len(g: &GeneralGeom) -> usize {
    g.n * g.c_out * g.out_h() * g.out_w()
}

fn naive_forward(g: &GeneralGeom, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f64> {
    let p = g.out_h() * g.out_w();
    let mut out: Vec<f64> = (0..o_len(g))
        .map(|i| b.map_or(0.0, |b| b[(i / p) % g.c_out] as f64))
        .collect();
    terms(g, |o, xi, wi| out[o] += x[xi] as f64 * w[wi] as f64);
    out
}

fn naive_input_vjp(g: &GeneralGeom, go: &[f32], w: &[f32]) -> Vec<f64> {
    let mut gx = vec![0.0f64; x_len(g)];
    terms(g, |o, xi, wi| gx[xi] += go[o] as f64 * w[wi] as f64);
    gx
}

fn naive_weight_grad(g: &GeneralGeom, x: &[f32], go: &[f32]) -> Vec<f64> {
    let mut gw = vec![0.0f64; w_len(g)];
    terms(g, |o, xi, wi| gw[wi] += go[o] as f64 * x[xi] as f64);
    gw
}

/// Forward (with and without bias), input VJP, weight and bias gradients and the
/// adjoint identities on one geometry.
fn check(g: &GeneralGeom, seed: u64) {
    let x = fill(x_len(g), seed);
    let w = fill(w_len(g), seed + 1);
    let b = fill(g.c_out, seed + 2);
    let go = fill(o_len(g), seed + 3);
    let (ax, aw, ago) = (abs(&x), abs(&w), abs(&go));

    let mut out = vec![f32::NAN; go.len()];
    forward(g, &x, &w, Some(&b), &mut out);
    let mag = naive_forward(g, &ax, &aw, Some(&abs(&b)));
    assert_close(
        &format!("{g:?} forward"),
        &out,
        &naive_forward(g, &x, &w, Some(&b)),
        &mag,
    );
    forward(g, &x, &w, None, &mut out);
    let mag = naive_forward(g, &ax, &aw, None);
    assert_close(
        &format!("{g:?} forward/nobias"),
        &out,
        &naive_forward(g, &x, &w, None),
        &mag,
    );

    let mut gx = vec![f32::NAN; x.len()];
    backward_input(g, &go, &w, &mut gx);
    let mag = naive_input_vjp(g, &ago, &aw);
    assert_close(
        &format!("{g:?} input vjp"),
        &gx,
        &naive_input_vjp(g, &go, &w),
        &mag,
    );

    let (mut gw, mut gb) = (vec![f32::NAN; w.len()], vec![f32::NAN; b.len()]);
    backward_weight(g, &x, &go, &mut gw, &mut gb);
    let mag = naive_weight_grad(g, &ax, &ago);
    assert_close(
        &format!("{g:?} weight grad"),
        &gw,
        &naive_weight_grad(g, &x, &go),
        &mag,
    );
    let p = g.out_h() * g.out_w();
    let (mut want_b, mut mag_b) = (vec![0.0f64; g.c_out], vec![0.0f64; g.c_out]);
    for (i, v) in go.iter().enumerate() {
        want_b[(i / p) % g.c_out] += *v as f64;
        mag_b[(i / p) % g.c_out] += v.abs() as f64;
    }
    assert_close(&format!("{g:?} bias grad"), &gb, &want_b, &mag_b);

    let (lhs, m0) = dot(&out, &go);
    for (what, (rhs, m1)) in [("input", dot(&x, &gx)), ("weight", dot(&w, &gw))] {
        let tol = 1e-4 * (m0 + m1) + 1e-6;
        assert!(
            (lhs - rhs).abs() <= tol,
            "{g:?} adjoint ({what}): {lhs} vs {rhs}"
        );
    }
}

/// The fused pass `x * J^T(r * z)` and two weighted VJPs (one with the batch's input,
/// one with one sample's values reused) against the definition.
fn check_fused(g: &GeneralGeom, seed: u64) {
    let x = fill(x_len(g), seed);
    let w = fill(w_len(g), seed + 1);
    let b = fill(g.c_out, seed + 2);
    let r = fill(o_len(g), seed + 3);
    let (ax, aw) = (abs(&x), abs(&w));
    let z = naive_forward(g, &x, &w, Some(&b));
    let z_mag = naive_forward(g, &ax, &aw, Some(&abs(&b)));
    let s: Vec<f32> = z
        .iter()
        .zip(&r)
        .map(|(z, &r)| (r as f64 * z) as f32)
        .collect();
    let s_mag: Vec<f32> = z_mag
        .iter()
        .zip(&r)
        .map(|(m, &r)| (r.abs() as f64 * m) as f32)
        .collect();
    let times_x = |v: Vec<f64>, x: &[f32]| -> Vec<f64> {
        v.iter().zip(x).map(|(v, &x)| v * x as f64).collect()
    };
    let want = times_x(naive_input_vjp(g, &s, &w), &x);
    let mag = times_x(naive_input_vjp(g, &s_mag, &aw), &ax);
    let mut out = vec![f32::NAN; x.len()];
    forward_map_backward(g, (&x, &w, Some(&b)), &r, |r, z| r * z, &mut out);
    assert_close(&format!("{g:?} fused"), &out, &want, &mag);

    let x_sz = g.c_in * g.h * g.w;
    let o_sz = o_len(g) / g.n;
    let w2 = fill(w_len(g), seed + 4);
    let one = fill(x_sz, seed + 5);
    let one_batch: Vec<f32> = (0..g.n).flat_map(|_| one.iter().copied()).collect();
    let terms = [
        WeightedVjp {
            w: &w,
            x: &x,
            factor: 1.5,
        },
        WeightedVjp {
            w: &w2,
            x: &one,
            factor: -0.5,
        },
    ];
    let mut out = vec![f32::NAN; x.len()];
    weighted_input_grads(
        g,
        |i, s_n| s_n.copy_from_slice(&r[i * o_sz..(i + 1) * o_sz]),
        &terms,
        &mut out,
    );
    let (t1, t2) = (
        times_x(naive_input_vjp(g, &r, &w), &x),
        times_x(naive_input_vjp(g, &r, &w2), &one_batch),
    );
    let want: Vec<f64> = t1.iter().zip(&t2).map(|(a, b)| 1.5 * a - 0.5 * b).collect();
    let ar = abs(&r);
    let m1 = times_x(naive_input_vjp(g, &ar, &aw), &ax);
    let m2 = times_x(naive_input_vjp(g, &ar, &abs(&w2)), &abs(&one_batch));
    let mag: Vec<f64> = m1.iter().zip(&m2).map(|(a, b)| 1.5 * a + 0.5 * b).collect();
    assert_close(&format!("{g:?} weighted vjps"), &out, &want, &mag);
}

#[allow(clippy::too_many_arguments)]
fn geom(
    n: usize,
    (c_in, c_out, groups): (usize, usize, usize),
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    stride: [usize; 2],
    pad_start: [usize; 2],
    pad_end: [usize; 2],
    dilation: [usize; 2],
) -> GeneralGeom {
    GeneralGeom {
        n,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride,
        pad_start,
        pad_end,
        dilation,
        groups,
    }
}

fn fits(g: &GeneralGeom) -> bool {
    g.dilation[0] * (g.kh - 1) < g.h + g.pad_start[0] + g.pad_end[0]
        && g.dilation[1] * (g.kw - 1) < g.w + g.pad_start[1] + g.pad_end[1]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 250, ..ProptestConfig::default() })]
    #[test]
    fn general_conv_matches_naive(
        n in 1usize..=3, groups in 1usize..=3, cig in 1usize..=3, cog in 1usize..=3,
        h in 1usize..=9, w in 1usize..=9, kh in 1usize..=3, kw in 1usize..=3,
        sh in 1usize..=3, sw in 1usize..=3, dh in 1usize..=3, dw in 1usize..=3,
        pads in proptest::array::uniform4(0usize..=3), seed in 0u64..1000,
    ) {
        let g = geom(n, (groups * cig, groups * cog, groups), [h, w], [kh, kw], [sh, sw],
            [pads[0], pads[1]], [pads[2], pads[3]], [dh, dw]);
        prop_assume!(fits(&g));
        check(&g, seed);
        check_fused(&g, seed);
    }
}

#[test]
fn depthwise_grouped_and_dilated_layers() {
    for n in [1, 3] {
        // Depthwise 3x3 stride 2 with TensorFlow-style "same" padding (more at the end),
        // a depthwise layer with channel multiplier 2, and a 5x5 depthwise one.
        check(
            &geom(
                n,
                (16, 16, 16),
                [15, 14],
                [3, 3],
                [2, 2],
                [0, 0],
                [1, 1],
                [1, 1],
            ),
            1,
        );
        check(
            &geom(
                n,
                (6, 12, 6),
                [9, 11],
                [3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
            ),
            2,
        );
        check(
            &geom(
                n,
                (8, 8, 8),
                [12, 12],
                [5, 5],
                [1, 2],
                [2, 2],
                [2, 2],
                [1, 1],
            ),
            3,
        );
        // ResNeXt-like grouped 3x3, a dilated (atrous) 3x3 and a grouped pointwise one.
        check(
            &geom(
                n,
                (32, 32, 4),
                [10, 10],
                [3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
            ),
            4,
        );
        check(
            &geom(
                n,
                (5, 7, 1),
                [16, 13],
                [3, 3],
                [1, 1],
                [2, 2],
                [2, 2],
                [2, 2],
            ),
            5,
        );
        check(
            &geom(
                n,
                (12, 9, 3),
                [7, 5],
                [1, 1],
                [1, 1],
                [0, 0],
                [0, 0],
                [1, 1],
            ),
            6,
        );
        check_fused(
            &geom(
                n,
                (16, 16, 16),
                [15, 14],
                [3, 3],
                [2, 2],
                [0, 0],
                [1, 1],
                [1, 1],
            ),
            7,
        );
        check_fused(
            &geom(
                n,
                (32, 32, 4),
                [10, 10],
                [3, 3],
                [1, 1],
                [1, 1],
                [1, 1],
                [1, 1],
            ),
            8,
        );
    }
    // Single depthwise samples large enough to be split across threads by groups.
    check(
        &geom(
            1,
            (32, 32, 32),
            [56, 56],
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
        ),
        10,
    );
    check(
        &geom(
            1,
            (24, 48, 24),
            [40, 37],
            [3, 3],
            [2, 2],
            [0, 0],
            [1, 1],
            [1, 1],
        ),
        11,
    );
    check_fused(
        &geom(
            1,
            (32, 32, 32),
            [56, 56],
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
        ),
        12,
    );
    // Large enough for the GEMMs of a single sample to split themselves.
    check(
        &geom(
            1,
            (64, 128, 2),
            [24, 24],
            [3, 3],
            [1, 1],
            [1, 1],
            [2, 0],
            [2, 1],
        ),
        9,
    );
}

#[test]
fn general_path_agrees_with_the_plain_kernels_on_plain_geometries() {
    use super::conv::{conv2d_backward_input, conv2d_forward};
    let g = geom(2, (5, 7, 1), [9, 8], [3, 2], [2, 1], [1, 2], [1, 2], [1, 1]);
    let p = g.plain().expect("a plain geometry");
    let x = fill(x_len(&g), 1);
    let w = fill(w_len(&g), 2);
    let go = fill(o_len(&g), 3);
    let (mut a, mut b) = (vec![0.0; o_len(&g)], vec![0.0; o_len(&g)]);
    forward(&g, &x, &w, None, &mut a);
    conv2d_forward(&p, &x, &w, None, &mut b);
    let mag = naive_forward(&g, &abs(&x), &abs(&w), None);
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    assert_close("forward", &a, &b64, &mag);
    let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    backward_input(&g, &go, &w, &mut a);
    conv2d_backward_input(&p, &go, &w, &mut b);
    let mag = naive_input_vjp(&g, &abs(&go), &abs(&w));
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    assert_close("input vjp", &a, &b64, &mag);
    assert!(
        geom(1, (4, 4, 2), [5, 5], [3, 3], [1, 1], [1, 1], [1, 1], [1, 1])
            .plain()
            .is_none()
    );
    assert!(
        geom(1, (4, 4, 1), [5, 5], [3, 3], [1, 1], [1, 0], [1, 1], [1, 1])
            .plain()
            .is_none()
    );
    assert!(
        geom(1, (4, 4, 1), [5, 5], [3, 3], [1, 1], [1, 1], [1, 1], [2, 1])
            .plain()
            .is_none()
    );
}

#[test]
fn split_samples_give_the_bits_of_serial_ones() {
    // Inside a task nothing splits; outside, a large sample may be split by groups (or its
    // GEMMs by blocks): each output is still summed in the same order.
    use super::split::as_task;
    for g in [
        geom(
            1,
            (32, 32, 32),
            [56, 56],
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
        ),
        geom(
            1,
            (24, 48, 24),
            [40, 37],
            [3, 3],
            [2, 2],
            [0, 0],
            [1, 1],
            [1, 1],
        ),
    ] {
        let x = fill(x_len(&g), 1);
        let w = fill(w_len(&g), 2);
        let go = fill(o_len(&g), 3);
        let run = || {
            let mut out = vec![0.0; o_len(&g)];
            forward(&g, &x, &w, None, &mut out);
            let mut gx = vec![0.0; x.len()];
            backward_input(&g, &go, &w, &mut gx);
            let (mut gw, mut gb) = (vec![0.0; w.len()], vec![0.0; g.c_out]);
            backward_weight(&g, &x, &go, &mut gw, &mut gb);
            (out, gx, gw, gb)
        };
        assert_eq!(run(), as_task(run), "{g:?}");
    }
}
