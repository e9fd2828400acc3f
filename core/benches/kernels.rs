//! Kernel throughput, reported by criterion as elements/s = flop/s.
//!
//! (a) `gemm/N`: our `gemm` on square N x N products next to a direct
//! `matrixmultiply::sgemm` call on the whole matrix (single-threaded, since
//! the crate's `threading` feature is off) and the same direct call split
//! into one row block per rayon thread (the fair comparison for our
//! parallel split). (b) `conv/<layer>/b<batch>`: forward, input gradient
//! and weight gradient of the LeNet-5 and small-VGG conv layers, each next
//! to the GEMM of the equivalent shape (M = c_out, K = c_in*kh*kw,
//! N = batch*oh*ow), so the overhead of im2col/col2im and the per-sample
//! split is the ratio of the two figures. Everything uses
//! 2*N*Cout*OH*OW*Cin*KH*KW flops per call. Runs are kept short (10 samples,
//! ~1 s each).
//!
//! Run: `cargo bench -p relprop-core --bench kernels [-- FILTER]`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use relprop_core::kernels::conv::{
    conv2d_backward_input, conv2d_backward_weight, conv2d_forward, Conv2dGeom,
};
use relprop_core::kernels::gemm::gemm;
use std::time::Duration;

fn fill(len: usize, seed: u64) -> Vec<f32> {
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

/// Direct `C = A * B` in one `matrixmultiply::sgemm` call (no splitting).
fn direct_sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    relprop_core::kernels::gemm::sgemm_single(m, k, n, a, b, c).expect("shapes match");
}

fn bench_gemm(cr: &mut Criterion) {
    let threads = rayon::current_num_threads();
    let mut group = cr.benchmark_group("gemm");
    for n in [256usize, 512, 1024] {
        let a = fill(n * n, 1);
        let b = fill(n * n, 2);
        let mut c = vec![0.0f32; n * n];
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_function(BenchmarkId::new("ours", n), |bch| {
            bch.iter(|| gemm(n, n, n, 1.0, &a, false, &b, false, 0.0, black_box(&mut c)).unwrap())
        });
        group.bench_function(BenchmarkId::new("sgemm_1t", n), |bch| {
            bch.iter(|| direct_sgemm(n, n, n, &a, &b, black_box(&mut c)))
        });
        let rows = n.div_ceil(threads);
        group.bench_function(BenchmarkId::new(format!("sgemm_{threads}t"), n), |bch| {
            bch.iter(|| {
                black_box(&mut c)
                    .par_chunks_mut(rows * n)
                    .enumerate()
                    .for_each(|(i, cb)| {
                        let mb = cb.len() / n;
                        direct_sgemm(mb, n, n, &a[i * rows * n..][..mb * n], &b, cb)
                    })
            })
        });
    }
    group.finish();
}

fn layers() -> Vec<(&'static str, Conv2dGeom)> {
    let g = |c_in, hw, c_out, k, p| Conv2dGeom {
        n: 0,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        stride: [1, 1],
        padding: [p, p],
    };
    vec![
        ("lenet_conv1", g(1, 28, 6, 5, 2)),
        ("lenet_conv2", g(6, 14, 16, 5, 0)),
        ("vgg_conv1", g(1, 28, 32, 3, 1)),
        ("vgg_conv2", g(32, 28, 32, 3, 1)),
        ("vgg_conv3", g(32, 14, 64, 3, 1)),
        ("vgg_conv4", g(64, 14, 64, 3, 1)),
    ]
}

fn bench_conv(cr: &mut Criterion) {
    for (name, base) in layers() {
        for batch in [32usize, 256] {
            let g = Conv2dGeom { n: batch, ..base };
            let p = g.out_h() * g.out_w();
            let kd = g.c_in * g.kh * g.kw;
            let flops = 2 * (batch * g.c_out * p * kd) as u64;
            let x = fill(batch * g.c_in * g.h * g.w, 1);
            let w = fill(g.c_out * kd, 2);
            let bias = fill(g.c_out, 3);
            let go = fill(batch * g.c_out * p, 4);
            let mut out = vec![0.0f32; go.len()];
            let mut gx = vec![0.0f32; x.len()];
            let mut gw = vec![0.0f32; w.len()];
            let mut gb = vec![0.0f32; g.c_out];
            let cols = fill(kd * batch * p, 5);

            let mut group = cr.benchmark_group(format!("conv/{name}/b{batch}"));
            group.throughput(Throughput::Elements(flops));
            group.bench_function("forward", |bch| {
                bch.iter(|| conv2d_forward(&g, &x, &w, Some(&bias), black_box(&mut out)))
            });
            group.bench_function("backward_input", |bch| {
                bch.iter(|| conv2d_backward_input(&g, &go, &w, black_box(&mut gx)))
            });
            group.bench_function("backward_weight", |bch| {
                bch.iter(|| conv2d_backward_weight(&g, &x, &go, black_box(&mut gw), Some(&mut gb)))
            });
            group.bench_function("gemm_equiv", |bch| {
                bch.iter(|| {
                    let (m, n) = (g.c_out, batch * p);
                    gemm(
                        m,
                        kd,
                        n,
                        1.0,
                        &w,
                        false,
                        &cols,
                        false,
                        0.0,
                        black_box(&mut out),
                    )
                    .unwrap()
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000));
    targets = bench_gemm, bench_conv
}
criterion_main!(benches);
