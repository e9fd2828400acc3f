//! Tests of the convolution and pooling kernels against direct nested-loop
//! definitions (computed in f64), plus adjoint identities
//! `<conv(x), g> == <x, backward_input(g)> == <w, backward_weight(x, g)>`.
//! Tolerances are relative to the magnitude of each sum (the same loop run
//! on absolute values).

use super::conv::*;
use super::conv_fused::conv2d_forward_map_backward;
use super::pool::*;
use proptest::prelude::*;

/// Deterministic pseudo-random values in [-1, 1).
pub(super) fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub(super) fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> (f64, f64) {
    let d = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let m = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 * *y as f64).abs())
        .sum();
    (d, m)
}

/// Asserts `got ≈ want` elementwise with tolerance `1e-4 * mag + 1e-6`.
pub(super) fn assert_close(what: &str, got: &[f32], want: &[f64], mag: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = 1e-4 * m + 1e-6;
        assert!(
            (*g as f64 - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tol {tol})"
        );
    }
}

/// Calls `f(n, co, oh, ow, ci, ih, iw, ki, kj)` for every product term of the
/// convolution whose input cell is in bounds.
fn conv_terms(g: &Conv2dGeom, mut f: impl FnMut([usize; 9])) {
    for n in 0..g.n {
        for co in 0..g.c_out {
            for oh in 0..g.out_h() {
                for ow in 0..g.out_w() {
                    for ci in 0..g.c_in {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let ih = (oh * g.stride[0] + ki) as isize - g.padding[0] as isize;
                                let iw = (ow * g.stride[1] + kj) as isize - g.padding[1] as isize;
                                if ih >= 0 && iw >= 0 && (ih as usize) < g.h && (iw as usize) < g.w
                                {
                                    f([n, co, oh, ow, ci, ih as usize, iw as usize, ki, kj]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn idx(g: &Conv2dGeom, t: [usize; 9]) -> (usize, usize, usize) {
    let [n, co, oh, ow, ci, ih, iw, ki, kj] = t;
    let o = ((n * g.c_out + co) * g.out_h() + oh) * g.out_w() + ow;
    let x = ((n * g.c_in + ci) * g.h + ih) * g.w + iw;
    let w = ((co * g.c_in + ci) * g.kh + ki) * g.kw + kj;
    (o, x, w)
}

fn naive_forward(g: &Conv2dGeom, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f64> {
    let mut out = vec![0.0f64; g.n * g.c_out * g.out_h() * g.out_w()];
    if let Some(b) = b {
        let p = g.out_h() * g.out_w();
        for (i, o) in out.iter_mut().enumerate() {
            *o = b[(i / p) % g.c_out] as f64;
        }
    }
    conv_terms(g, |t| {
        let (o, xi, wi) = idx(g, t);
        out[o] += x[xi] as f64 * w[wi] as f64;
    });
    out
}

fn naive_backward_input(g: &Conv2dGeom, go: &[f32], w: &[f32]) -> Vec<f64> {
    let mut gx = vec![0.0f64; g.n * g.c_in * g.h * g.w];
    conv_terms(g, |t| {
        let (o, xi, wi) = idx(g, t);
        gx[xi] += go[o] as f64 * w[wi] as f64;
    });
    gx
}

fn naive_backward_weight(g: &Conv2dGeom, x: &[f32], go: &[f32]) -> Vec<f64> {
    let mut gw = vec![0.0f64; g.c_out * g.c_in * g.kh * g.kw];
    conv_terms(g, |t| {
        let (o, xi, wi) = idx(g, t);
        gw[wi] += go[o] as f64 * x[xi] as f64;
    });
    gw
}

/// Checks all three conv kernels on one geometry.
fn check_conv(g: &Conv2dGeom, seed: u64) {
    let x = fill(g.n * g.c_in * g.h * g.w, seed);
    let w = fill(g.c_out * g.c_in * g.kh * g.kw, seed + 1);
    let b = fill(g.c_out, seed + 2);
    let go = fill(g.n * g.c_out * g.out_h() * g.out_w(), seed + 3);
    let (ax, aw, ago) = (abs(&x), abs(&w), abs(&go));

    // Forward, with and without bias (output starts as garbage).
    let mut out = vec![f32::NAN; go.len()];
    conv2d_forward(g, &x, &w, Some(&b), &mut out);
    let mag = naive_forward(g, &ax, &aw, Some(&abs(&b)));
    assert_close(
        &format!("{g:?} forward"),
        &out,
        &naive_forward(g, &x, &w, Some(&b)),
        &mag,
    );
    conv2d_forward(g, &x, &w, None, &mut out);
    let mag = naive_forward(g, &ax, &aw, None);
    assert_close(
        &format!("{g:?} forward/nobias"),
        &out,
        &naive_forward(g, &x, &w, None),
        &mag,
    );

    // Input gradient.
    let mut gx = vec![f32::NAN; x.len()];
    conv2d_backward_input(g, &go, &w, &mut gx);
    let mag = naive_backward_input(g, &ago, &aw);
    assert_close(
        &format!("{g:?} backward_input"),
        &gx,
        &naive_backward_input(g, &go, &w),
        &mag,
    );

    // Weight and bias gradients.
    let mut gw = vec![f32::NAN; w.len()];
    let mut gb = vec![f32::NAN; b.len()];
    conv2d_backward_weight(g, &x, &go, &mut gw, Some(&mut gb));
    let mag = naive_backward_weight(g, &ax, &ago);
    assert_close(
        &format!("{g:?} backward_weight"),
        &gw,
        &naive_backward_weight(g, &x, &go),
        &mag,
    );
    let p = g.out_h() * g.out_w();
    let mut want_b = vec![0.0f64; g.c_out];
    let mut mag_b = vec![0.0f64; g.c_out];
    for (i, v) in go.iter().enumerate() {
        want_b[(i / p) % g.c_out] += *v as f64;
        mag_b[(i / p) % g.c_out] += v.abs() as f64;
    }
    assert_close(&format!("{g:?} backward_bias"), &gb, &want_b, &mag_b);
    let mut gw2 = vec![f32::NAN; w.len()];
    conv2d_backward_weight(g, &x, &go, &mut gw2, None);
    assert_eq!(
        gw, gw2,
        "grad_w must not depend on whether grad_b is requested"
    );

    // Adjoint identities: <conv(x; w), go> = <x, gx> = <w, gw>.
    let (lhs, m0) = dot(&out, &go);
    for (what, (rhs, m1)) in [("input", dot(&x, &gx)), ("weight", dot(&w, &gw))] {
        let tol = 1e-4 * (m0 + m1) + 1e-6;
        assert!(
            (lhs - rhs).abs() <= tol,
            "{g:?} adjoint ({what}): {lhs} vs {rhs}"
        );
    }
}

/// The fused forward-map-backward pass against the definition, with `f(r, z) = r * z`
/// (a map that keeps the reference's error bounds simple).
fn check_fused(g: &Conv2dGeom, seed: u64) {
    let x = fill(g.n * g.c_in * g.h * g.w, seed);
    let w = fill(g.c_out * g.c_in * g.kh * g.kw, seed + 1);
    let b = fill(g.c_out, seed + 2);
    let r = fill(g.n * g.c_out * g.out_h() * g.out_w(), seed + 3);
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
    let back = naive_backward_input(g, &s, &w);
    let back_mag = naive_backward_input(g, &s_mag, &aw);
    let want: Vec<f64> = back.iter().zip(&x).map(|(v, &x)| v * x as f64).collect();
    let mag: Vec<f64> = back_mag
        .iter()
        .zip(&ax)
        .map(|(v, &x)| v * x as f64)
        .collect();
    let mut out = vec![f32::NAN; x.len()];
    conv2d_forward_map_backward(g, &x, &w, Some(&b), &r, |r, z| r * z, &mut out);
    assert_close(&format!("{g:?} fused"), &out, &want, &mag);
}

fn geom(
    n: usize,
    c_in: usize,
    hw: [usize; 2],
    c_out: usize,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
) -> Conv2dGeom {
    Conv2dGeom {
        n,
        c_in,
        h: hw[0],
        w: hw[1],
        c_out,
        kh: k[0],
        kw: k[1],
        stride: s,
        padding: p,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn conv_matches_naive(
        n in 1usize..=3, c_in in 1usize..=4, c_out in 1usize..=4,
        h in 1usize..=9, w in 1usize..=9, kh in 1usize..=4, kw in 1usize..=4,
        sh in 1usize..=2, sw in 1usize..=2, ph in 0usize..=2, pw in 0usize..=2,
        seed in 0u64..1000,
    ) {
        prop_assume!(h + 2 * ph >= kh && w + 2 * pw >= kw);
        let g = geom(n, c_in, [h, w], c_out, [kh, kw], [sh, sw], [ph, pw]);
        check_conv(&g, seed);
        check_fused(&g, seed);
    }
}

#[test]
fn conv_layer_shapes() {
    // Bench-like layers at batch 1 (the sample is split) and batch 3 (batch
    // split), the 1x1 fast path, and wide strides/paddings.
    for n in [1, 3] {
        check_conv(&geom(n, 1, [28, 28], 6, [5, 5], [1, 1], [2, 2]), 1);
        check_conv(&geom(n, 6, [14, 14], 16, [5, 5], [1, 1], [0, 0]), 2);
        check_conv(&geom(n, 32, [14, 14], 64, [3, 3], [1, 1], [1, 1]), 3);
        check_conv(&geom(n, 16, [9, 7], 40, [1, 1], [1, 1], [0, 0]), 4);
        check_conv(&geom(n, 3, [11, 13], 5, [3, 2], [2, 3], [1, 0]), 5);
    }
    // A single sample large enough to be split into bands of output rows, with uneven
    // bands, a strided one and a pointwise one.
    check_conv(&geom(1, 7, [32, 32], 24, [3, 3], [1, 1], [1, 1]), 8);
    check_conv(&geom(1, 9, [33, 31], 56, [3, 3], [2, 2], [1, 1]), 9);
    check_conv(&geom(1, 64, [16, 16], 128, [1, 1], [1, 1], [0, 0]), 12);
    check_fused(&geom(1, 9, [33, 31], 56, [3, 3], [2, 2], [1, 1]), 13);
    check_fused(&geom(1, 7, [32, 32], 24, [5, 3], [1, 1], [2, 1]), 14);
    for n in [1, 3] {
        check_fused(&geom(n, 32, [14, 14], 64, [3, 3], [1, 1], [1, 1]), 10);
        check_fused(&geom(n, 16, [9, 7], 40, [1, 1], [1, 1], [0, 0]), 11);
    }
    check_conv(&geom(2, 48, [20, 20], 80, [1, 1], [1, 1], [0, 0]), 6);
    check_conv(&geom(9, 2, [5, 6], 3, [4, 1], [3, 1], [2, 0]), 7);
}

/// Two weighted VJPs (one with the batch's input, one with one sample's values reused),
/// each sample's signal written by the callback, against the definition.
fn check_weighted_vjps(g: &Conv2dGeom, seed: u64) {
    use super::conv_fused::{conv2d_weighted_input_grads, WeightedVjp};
    let x_sz = g.c_in * g.h * g.w;
    let o_sz = g.c_out * g.out_h() * g.out_w();
    let x = fill(g.n * x_sz, seed);
    let bound = fill(x_sz, seed + 1);
    let (w1, w2) = (
        fill(g.c_out * g.k_dim(), seed + 2),
        fill(g.c_out * g.k_dim(), seed + 3),
    );
    let s = fill(g.n * o_sz, seed + 4);
    let bound_batch: Vec<f32> = (0..g.n).flat_map(|_| bound.iter().copied()).collect();
    let (g1, g2) = (
        naive_backward_input(g, &s, &w1),
        naive_backward_input(g, &s, &w2),
    );
    let (m1, m2) = (
        naive_backward_input(g, &abs(&s), &abs(&w1)),
        naive_backward_input(g, &abs(&s), &abs(&w2)),
    );
    let want: Vec<f64> = (0..x.len())
        .map(|i| 0.5 * x[i] as f64 * g1[i] - 2.0 * bound_batch[i] as f64 * g2[i])
        .collect();
    let mag: Vec<f64> = (0..x.len())
        .map(|i| 0.5 * (x[i].abs() as f64) * m1[i] + 2.0 * (bound_batch[i].abs() as f64) * m2[i])
        .collect();
    let terms = [
        WeightedVjp {
            w: &w1,
            x: &x,
            factor: 0.5,
        },
        WeightedVjp {
            w: &w2,
            x: &bound,
            factor: -2.0,
        },
    ];
    let mut out = vec![f32::NAN; x.len()];
    let s_of = |i: usize, s_n: &mut [f32]| s_n.copy_from_slice(&s[i * o_sz..(i + 1) * o_sz]);
    conv2d_weighted_input_grads(g, s_of, &terms, &mut out);
    assert_close(&format!("{g:?} weighted VJPs"), &out, &want, &mag);
}

#[test]
fn weighted_input_grads_match_naive() {
    for n in [1, 3] {
        check_weighted_vjps(&geom(n, 1, [28, 28], 32, [3, 3], [1, 1], [1, 1]), 20);
        check_weighted_vjps(&geom(n, 3, [11, 13], 5, [3, 2], [2, 3], [1, 0]), 21);
        check_weighted_vjps(&geom(n, 16, [9, 7], 40, [1, 1], [1, 1], [0, 0]), 22);
    }
}

// ---------------------------------------------------------------- pooling

/// Window cells of output `(oh, ow)` in row-major order, in bounds only.
fn pool_window(g: &Pool2dGeom, oh: usize, ow: usize) -> Vec<(usize, usize)> {
    let mut cells = vec![];
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let ih = (oh * g.stride[0] + ki) as isize - g.padding[0] as isize;
            let iw = (ow * g.stride[1] + kj) as isize - g.padding[1] as isize;
            if ih >= 0 && iw >= 0 && (ih as usize) < g.h && (iw as usize) < g.w {
                cells.push((ih as usize, iw as usize));
            }
        }
    }
    cells
}

fn check_pool(g: &Pool2dGeom, seed: u64) {
    let x = fill(g.n * g.c * g.h * g.w, seed);
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let go = fill(g.n * g.c * oh_n * ow_n, seed + 1);
    let mut out = vec![f32::NAN; go.len()];
    let mut arg = vec![u32::MAX; go.len()];
    max_pool2d_forward(g, &x, &mut out, &mut arg);
    let mut avg = vec![f32::NAN; go.len()];
    avg_pool2d_forward(g, &x, &mut avg);
    let mut gx_max = vec![0.0f64; x.len()];
    let mut gx_avg = vec![0.0f64; x.len()];
    let mut gx_mag = vec![0.0f64; x.len()];
    let area = (g.kh * g.kw) as f64;
    for plane in 0..g.n * g.c {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                let o = (plane * oh_n + oh) * ow_n + ow;
                let cells = pool_window(g, oh, ow);
                assert!(!cells.is_empty());
                let flat = |(ih, iw): (usize, usize)| (plane * g.h + ih) * g.w + iw;
                let mut best = flat(cells[0]);
                let mut sum = 0.0f64;
                let mut mag = 0.0f64;
                for &c in &cells {
                    if x[flat(c)] > x[best] {
                        best = flat(c);
                    }
                    sum += x[flat(c)] as f64;
                    mag += x[flat(c)].abs() as f64;
                    gx_avg[flat(c)] += go[o] as f64 / area;
                    gx_mag[flat(c)] += go[o].abs() as f64 / area;
                }
                assert_eq!(out[o], x[best], "{g:?} max value at {o}");
                assert_eq!(arg[o] as usize, best, "{g:?} argmax at {o}");
                gx_max[best] += go[o] as f64;
                let tol = 1e-5 * mag / area + 1e-7;
                assert!(
                    (avg[o] as f64 - sum / area).abs() <= tol,
                    "{g:?} avg at {o}"
                );
            }
        }
    }
    let mut gx = vec![f32::NAN; x.len()];
    max_pool2d_backward(g, &go, &arg, &mut gx);
    let mag: Vec<f64> = gx_max.iter().map(|v| v.abs() * 4.0).collect();
    assert_close(&format!("{g:?} max backward"), &gx, &gx_max, &mag);
    avg_pool2d_backward(g, &go, &mut gx);
    assert_close(&format!("{g:?} avg backward"), &gx, &gx_avg, &gx_mag);
    // Adjoint: <avg(x), go> = <x, avg_backward(go)>.
    let ((l, m0), (r, m1)) = (dot(&avg, &go), dot(&x, &gx));
    assert!(
        (l - r).abs() <= 1e-4 * (m0 + m1) + 1e-6,
        "{g:?} avg adjoint {l} vs {r}"
    );
}

fn pgeom(
    n: usize,
    c: usize,
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
) -> Pool2dGeom {
    Pool2dGeom {
        n,
        c,
        h: hw[0],
        w: hw[1],
        kh: k[0],
        kw: k[1],
        stride: s,
        padding: p,
    }
}

#[test]
fn pools_match_naive() {
    let mut seed = 10;
    for hw in [[1, 1], [2, 3], [7, 7], [8, 9], [13, 10]] {
        for (k, s, p) in [
            ([2, 2], [2, 2], [0, 0]), // non-overlapping
            ([3, 3], [1, 1], [1, 1]), // overlapping, padded
            ([3, 3], [2, 2], [1, 1]),
            ([3, 3], [2, 2], [0, 0]),
            ([3, 2], [2, 1], [1, 0]), // non-square
            ([1, 1], [1, 1], [0, 0]),
            ([4, 4], [4, 4], [2, 2]),
        ] {
            if hw[0] + 2 * p[0] < k[0] || hw[1] + 2 * p[1] < k[1] {
                continue;
            }
            seed += 1;
            check_pool(&pgeom(2, 3, hw, k, s, p), seed);
        }
    }
    // Large enough for the parallel path.
    check_pool(&pgeom(4, 8, [28, 28], [3, 3], [2, 2], [1, 1]), 1);
    check_pool(&pgeom(3, 16, [28, 28], [2, 2], [2, 2], [0, 0]), 2);
}

proptest! {
    #[test]
    fn pools_match_naive_random(
        n in 1usize..=2, c in 1usize..=3, h in 1usize..=9, w in 1usize..=9,
        kh in 1usize..=4, kw in 1usize..=4, sh in 1usize..=3, sw in 1usize..=3,
        ph in 0usize..=2, pw in 0usize..=2, seed in 0u64..1000,
    ) {
        prop_assume!(2 * ph <= kh && 2 * pw <= kw && h + 2 * ph >= kh && w + 2 * pw >= kw);
        check_pool(&pgeom(n, c, [h, w], [kh, kw], [sh, sw], [ph, pw]), seed);
    }
}

#[test]
fn max_pool_ties_and_nan() {
    // Ties: the first cell of the window (in row-major order) wins.
    let g = pgeom(1, 1, [4, 4], [3, 3], [1, 1], [1, 1]);
    let x = vec![1.0f32; 16];
    let mut out = vec![0.0; 16];
    let mut arg = vec![0u32; 16];
    max_pool2d_forward(&g, &x, &mut out, &mut arg);
    let want: Vec<u32> = (0..4)
        .flat_map(|oh: u32| {
            (0..4).map(move |ow: u32| oh.saturating_sub(1) * 4 + ow.saturating_sub(1))
        })
        .collect();
    assert_eq!(arg, want);
    // Padding is -inf, so an all-negative window never picks a pad cell.
    let x = vec![-5.0f32; 16];
    max_pool2d_forward(&g, &x, &mut out, &mut arg);
    assert!(out.iter().all(|&v| v == -5.0));
    // NaN propagates.
    let mut x = vec![0.0f32; 16];
    x[5] = f32::NAN;
    x[6] = 3.0;
    max_pool2d_forward(&g, &x, &mut out, &mut arg);
    assert!(out[0].is_nan() && arg[0] == 5);
    assert!(out[2].is_nan() && arg[2] == 5);
    assert_eq!((out[3], arg[3]), (3.0, 6));
}
