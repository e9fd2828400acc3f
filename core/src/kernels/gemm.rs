//! Single-precision matrix multiply on row-major slices.
//!
//! Everything funnels into `sgemm_strided`, the one place in the project
//! that uses `unsafe`: it checks with overflow-checked arithmetic that the
//! last element each strided view touches lies inside its slice, and only
//! then hands raw pointers to `matrixmultiply::sgemm` (built without its
//! `threading` feature, so it is single-threaded). Transposes are stride
//! swaps on the same data, never copies. [`gemm`] validates the slice lengths
//! (returning `Err` rather than panicking), treats the degenerate shapes
//! (`m == 0`, `n == 0`, `k == 0`) in safe code, and, when it may split
//! (see `split`) a large enough product, splits C into as many row blocks as
//! rayon has threads (or column blocks computed into scratch when C has few
//! rows) and runs the blocks concurrently. Inside one task of an outer split
//! (the convolutions' batch loops) it stays single-threaded. Block edges are
//! multiples of the widest microkernel tile so that no thread spends its time
//! on padded tiles.

use super::split::may_split;
use rayon::prelude::*;
use std::sync::Mutex;

/// Below this many multiply-adds (`m * n * k`) a call stays on the calling
/// thread: waking the pool costs more than it saves (measured on 2 cores:
/// 100^3 gains 1.35x, 64^3 loses 2x).
const PAR_MIN_WORK: usize = 1 << 20;

/// A single row goes through [`gemv`] from this many elements of B. Below it packing
/// costs little, and sgemm sums each row in the same order whatever the number of rows,
/// so a small layer gives a sample the same bits alone as in a batch (the GEMV sums in
/// another order, which an unstabilised LRP-0 denominator near zero can magnify).
const GEMV_MIN: usize = 1 << 15;

/// A single-row product splits across threads from this many elements of B: it reads
/// B once and does little with each element, so it is bound by memory, and each core
/// brings its own share of bandwidth.
const GEMV_PAR_MIN: usize = 1 << 17;

/// Target size in floats of one column block's scratch (256 KiB).
const COLUMN_SCRATCH: usize = 1 << 16;

/// Same for the column split, which also copies C through scratch.
const PAR_MIN_WORK_COLUMNS: usize = 1 << 21;

/// Block edges handed to threads are rounded up to a multiple of this (the
/// 16x16 AVX-512 microkernel of matrixmultiply; a multiple of the 8x8 AVX2 one).
const TILE: usize = 16;

/// Offset of element `(rows - 1, cols - 1)` of a strided view, or `None` on
/// overflow. Requires `rows > 0 && cols > 0`.
fn last_offset(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)
}

/// Checks that a `rows x cols` view with strides `(rs, cs)` starting at
/// `data[0]` stays inside `data`, and that the strides fit in `isize`.
fn check_view(
    what: &str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<(), String> {
    let last = last_offset(rows, cols, rs, cs)
        .ok_or_else(|| format!("gemm: {what} view {rows}x{cols} strides ({rs},{cs}) overflows"))?;
    if last >= len {
        return Err(format!(
            "gemm: {what} view {rows}x{cols} strides ({rs},{cs}) reaches offset {last} of a slice of length {len}"
        ));
    }
    if isize::try_from(rs).is_err() || isize::try_from(cs).is_err() {
        return Err(format!(
            "gemm: {what} strides ({rs},{cs}) exceed isize::MAX"
        ));
    }
    Ok(())
}

/// C = beta * C on every element, without reading C when `beta == 0` (so NaN
/// or garbage in C does not survive, as with BLAS).
fn scale(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else if beta != 1.0 {
        c.iter_mut().for_each(|v| *v *= beta);
    }
}

/// `C = A * B` for row-major `A [m, k]`, `B [k, n]`, `C [m, n]` in one single-threaded
/// `matrixmultiply::sgemm` call, without [`gemm`]'s splitting: the baseline that the kernel
/// benchmark compares [`gemm`] with.
pub fn sgemm_single(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<(), String> {
    if a.len() != m * k || b.len() != k * n || c.len() != m * n {
        return Err(format!(
            "sgemm_single: lengths do not match m={m}, k={k}, n={n}"
        ));
    }
    sgemm_strided((m, k, n), 1.0, (a, k, 1), (b, n, 1), 0.0, (c, n))
}

/// `C = alpha * A * B + beta * C` on strided views, single-threaded.
///
/// `A` is the `m x k` view `a[i * rsa + p * csa]`, `B` the `k x n` view
/// `b[p * rsb + j * csb]`, `C` the `m x n` view `c[i * rsc + j]`.
/// Returns `Err` when a view would leave its slice or C's rows would overlap.
#[allow(clippy::too_many_arguments)]
fn sgemm_strided(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, rsa, csa): (&[f32], usize, usize),
    (b, rsb, csb): (&[f32], usize, usize),
    beta: f32,
    (c, rsc): (&mut [f32], usize),
) -> Result<(), String> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        for i in 0..m {
            scale(&mut c[i * rsc..i * rsc + n], beta);
        }
        return Ok(());
    }
    check_view("A", a.len(), m, k, rsa, csa)?;
    check_view("B", b.len(), k, n, rsb, csb)?;
    check_view("C", c.len(), m, n, rsc, 1)?;
    if m > 1 && rsc < n {
        return Err(format!(
            "gemm: C row stride {rsc} < row length {n} makes rows overlap"
        ));
    }
    // SAFETY: `matrixmultiply::sgemm` reads exactly the elements
    // `a[i*rsa + p*csa]` (i < m, p < k) and `b[p*rsb + j*csb]` (p < k, j < n),
    // and reads/writes exactly `c[i*rsc + j]` (i < m, j < n). All strides are
    // non-negative, so the largest offset of each view is the one of its last
    // element, which `check_view` proved (with overflow-checked arithmetic) to
    // be `< len` of the corresponding slice; the strides fit in `isize`
    // (checked above), so the casts below are exact. C's elements are
    // pairwise distinct (column stride 1, row stride >= n), as sgemm
    // requires. `c` is a unique borrow, so it cannot alias `a` or `b`, and no
    // other thread can touch it during the call. m, k, n > 0 here.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
        );
    }
    Ok(())
}

/// `ceil(len / parts)` rounded up to a multiple of [`TILE`].
fn block_len(len: usize, parts: usize) -> usize {
    len.div_ceil(parts).div_ceil(TILE) * TILE
}

/// `c[1, n] = alpha * a[1, k] op(B) + beta * c`, in safe code: dot products with the rows
/// of B when it is stored transposed (`[n, k]`), scaled row sums otherwise; eight partial
/// sums let the compiler vectorise.
#[allow(clippy::too_many_arguments)]
fn gemv(
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    trans_b: bool,
    beta: f32,
    c: &mut [f32],
) {
    let finish =
        |acc: f32, cj: &mut f32| *cj = alpha * acc + if beta == 0.0 { 0.0 } else { beta * *cj };
    if trans_b {
        let row = |j: usize, cj: &mut f32| {
            let bj = &b[j * k..(j + 1) * k];
            let mut part = [0.0f32; 8];
            let (ac, bc) = (a.chunks_exact(8), bj.chunks_exact(8));
            let tail: f32 = ac
                .remainder()
                .iter()
                .zip(bc.remainder())
                .map(|(x, y)| x * y)
                .sum();
            for (x, y) in ac.zip(bc) {
                for l in 0..8 {
                    part[l] += x[l] * y[l];
                }
            }
            finish(part.iter().sum::<f32>() + tail, cj);
        };
        if n * k >= GEMV_PAR_MIN && may_split() {
            c.par_iter_mut()
                .enumerate()
                .with_min_len(16)
                .for_each(|(j, cj)| row(j, cj));
        } else {
            c.iter_mut().enumerate().for_each(|(j, cj)| row(j, cj));
        }
    } else {
        // Column blocks of C, each summing its columns of every row of B in row order:
        // the same sums as one pass, split over threads for a large B.
        let columns = |j0: usize, cb: &mut [f32]| {
            let mut acc = vec![0.0f32; cb.len()];
            for (&ai, brow) in a.iter().zip(b.chunks_exact(n)) {
                if ai != 0.0 {
                    let brow = &brow[j0..j0 + cb.len()];
                    acc.iter_mut().zip(brow).for_each(|(s, &v)| *s += ai * v);
                }
            }
            cb.iter_mut().zip(acc).for_each(|(cj, s)| finish(s, cj));
        };
        let threads = rayon::current_num_threads();
        if n * k >= GEMV_PAR_MIN && n >= 2 * TILE && may_split() {
            let block = block_len(n, threads);
            c.par_chunks_mut(block)
                .enumerate()
                .for_each(|(bi, cb)| columns(bi * block, cb));
        } else {
            columns(0, c);
        }
    }
}

/// C = alpha * op(A) * op(B) + beta * C, row-major; op = transpose when the flag is set.
/// `a` is `[m, k]` (or `[k, m]` if `trans_a`), `b` is `[k, n]` (or `[n, k]` if `trans_b`),
/// `c` is `[m, n]`.
///
/// Returns `Err` (and leaves `c` untouched) when a slice length does not match
/// its shape. When `beta == 0`, C is overwritten without being read.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    beta: f32,
    c: &mut [f32],
) -> Result<(), String> {
    let len = |r: usize, s: usize, what: &str| {
        r.checked_mul(s)
            .ok_or_else(|| format!("gemm: {what} size {r}x{s} overflows usize"))
    };
    for (what, want, got) in [
        ("A", len(m, k, "A")?, a.len()),
        ("B", len(k, n, "B")?, b.len()),
        ("C", len(m, n, "C")?, c.len()),
    ] {
        if want != got {
            return Err(format!(
                "gemm: {what} has {got} elements, expected {want} (m={m}, k={k}, n={n})"
            ));
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        scale(c, beta);
        return Ok(());
    }
    if m == 1 && k * n >= GEMV_MIN {
        // A single row (a dense layer at batch 1) is a matrix-vector product: packing the
        // whole weight matrix for sgemm would cost as much as the product itself.
        gemv(k, n, alpha, a, b, trans_b, beta, c);
        return Ok(());
    }
    let (rsa, csa) = if trans_a { (1, m) } else { (k, 1) };
    let (rsb, csb) = if trans_b { (1, k) } else { (n, 1) };

    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(k);
    if work >= PAR_MIN_WORK && may_split() {
        if m >= 2 * TILE && (m >= n || m >= TILE * threads * 4) {
            // Row blocks of C are contiguous: each thread writes its own chunk.
            let rows = block_len(m, threads);
            return c
                .par_chunks_mut(rows * n)
                .enumerate()
                .try_for_each(|(bi, cb)| {
                    let r0 = bi * rows;
                    let a_blk = if trans_a { &a[r0..] } else { &a[r0 * k..] };
                    let mb = cb.len() / n;
                    sgemm_strided(
                        (mb, k, n),
                        alpha,
                        (a_blk, rsa, csa),
                        (b, rsb, csb),
                        beta,
                        (cb, n),
                    )
                });
        }
        if n >= 2 * TILE && work >= PAR_MIN_WORK_COLUMNS {
            return gemm_column_blocks(
                (m, k, n),
                alpha,
                (a, rsa, csa),
                (b, trans_b, rsb, csb),
                beta,
                c,
                threads,
            );
        }
    }
    sgemm_strided((m, k, n), alpha, (a, rsa, csa), (b, rsb, csb), beta, (c, n))
}

/// Parallel split over the columns of C (for short, wide products). Column
/// blocks of a row-major C are not contiguous, so each block is computed into
/// a per-task scratch and copied into C row by row, each row under its own
/// lock (tasks rarely meet there). Blocks are capped at about [`COLUMN_SCRATCH`]
/// floats so the scratch stays in cache and memory stays bounded.
fn gemm_column_blocks(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: (&[f32], usize, usize),
    (b, trans_b, rsb, csb): (&[f32], bool, usize, usize),
    beta: f32,
    c: &mut [f32],
    threads: usize,
) -> Result<(), String> {
    let cap = (COLUMN_SCRATCH / m).max(TILE) / TILE * TILE;
    let cols = block_len(n, threads).min(cap);
    // One lock per row of C: tasks copying different blocks rarely meet.
    let rows: Vec<Mutex<&mut [f32]>> = c.chunks_exact_mut(n).map(Mutex::new).collect();
    let lock = |i: usize| {
        rows[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    (0..n.div_ceil(cols))
        .into_par_iter()
        .try_for_each_init(Vec::new, |tmp: &mut Vec<f32>, bi| {
            let c0 = bi * cols;
            let nb = cols.min(n - c0);
            tmp.resize(m * nb, 0.0);
            if beta != 0.0 {
                for (i, row) in tmp.chunks_exact_mut(nb).enumerate() {
                    row.copy_from_slice(&lock(i)[c0..c0 + nb]);
                }
            }
            let b_blk = if trans_b { &b[c0 * k..] } else { &b[c0..] };
            sgemm_strided((m, k, nb), alpha, a, (b_blk, rsb, csb), beta, (tmp, nb))?;
            for (i, row) in tmp.chunks_exact(nb).enumerate() {
                lock(i)[c0..c0 + nb].copy_from_slice(row);
            }
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
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

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
        beta: f32,
        c: &mut [f32],
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                let prev = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * n + j] as f64
                };
                c[i * n + j] = (alpha as f64 * s + prev) as f32;
            }
        }
    }

    fn check(m: usize, k: usize, n: usize, alpha: f32, beta: f32) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = fill(m * k, (m * 31 + k) as u64);
            let b = fill(k * n, (k * 17 + n) as u64 + 7);
            let c0 = fill(m * n, 99);
            let mut got = c0.clone();
            let mut want = c0.clone();
            gemm(m, k, n, alpha, &a, ta, &b, tb, beta, &mut got).unwrap();
            naive(m, k, n, alpha, &a, ta, &b, tb, beta, &mut want);
            // Entries are sums of k products of values in [-1, 1).
            let scale = alpha.abs() * (k as f32).sqrt().max(1.0) + beta.abs();
            for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * scale.max(1.0) + 1e-4 * w.abs(),
                    "m={m} k={k} n={n} ta={ta} tb={tb} alpha={alpha} beta={beta} idx={idx}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn matches_naive_small_and_odd_sizes() {
        let sizes = [1, 3, 17, 33, 65];
        for &m in &sizes {
            for &k in &sizes {
                for &n in &sizes {
                    check(m, k, n, 1.0, 0.0);
                }
            }
        }
        check(3, 17, 33, 0.5, 2.0);
        check(65, 1, 17, -1.5, 1.0);
        check(33, 65, 3, 2.0, -0.25);
    }

    #[test]
    fn matches_naive_on_parallel_sizes() {
        // All above the parallel thresholds: row split (square-ish), column
        // split (short and wide, several cache-capped blocks per thread,
        // with and without beta), and the too-few-rows/columns fallback.
        check(130, 130, 130, 1.0, 0.0);
        check(257, 65, 130, 0.75, 1.5);
        check(6, 400, 1000, 1.0, 1.0);
        check(17, 300, 500, -2.0, 0.5);
        check(40, 20, 5000, 1.0, 0.0);
        check(40, 20, 5000, 0.5, -1.0);
        check(1000, 300, 9, 1.0, 0.0);
        check(3, 1000, 2000, 1.0, 1.0);
        check(3, 100000, 2, 1.0, 1.0);
    }

    #[test]
    fn single_rows_match_naive_on_every_path() {
        check(1, 100, 300, 1.0, 0.0); // small: sgemm
        check(1, 128, 300, 0.5, 1.5); // GEMV on one thread
        check(1, 200, 700, -1.0, 0.5); // GEMV split over threads, uneven blocks
        check(1, 3136, 128, 1.0, 0.0); // vgg_small's first dense layer
    }

    #[test]
    fn matches_naive_inside_rayon_worker() {
        rayon::scope(|_| check(130, 65, 130, 1.0, 0.5));
        rayon::join(
            || check(6, 150, 1000, 1.0, 1.0),
            || check(33, 33, 33, 1.0, 0.0),
        );
    }

    #[test]
    fn degenerate_shapes() {
        let mut c = vec![2.0f32; 6];
        gemm(2, 0, 3, 1.0, &[], false, &[], true, 0.5, &mut c).unwrap();
        assert_eq!(c, vec![1.0; 6]);
        let mut c = vec![f32::NAN; 6];
        gemm(2, 0, 3, 1.0, &[], false, &[], false, 0.0, &mut c).unwrap();
        assert_eq!(c, vec![0.0; 6]);
        let mut c: Vec<f32> = vec![];
        gemm(0, 4, 3, 1.0, &[], false, &[0.0; 12], false, 0.0, &mut c).unwrap();
        gemm(3, 4, 0, 1.0, &[0.0; 12], true, &[], false, 0.0, &mut c).unwrap();
        // beta == 0 ignores NaN in C.
        let mut c = vec![f32::NAN; 4];
        gemm(
            2,
            1,
            2,
            1.0,
            &[1.0, 2.0],
            false,
            &[3.0, 4.0],
            false,
            0.0,
            &mut c,
        )
        .unwrap();
        assert_eq!(c, vec![3.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn inconsistent_lengths_are_errors() {
        let mut c = vec![0.0f32; 4];
        assert!(gemm(2, 2, 2, 1.0, &[0.0; 3], false, &[0.0; 4], false, 0.0, &mut c).is_err());
        assert!(gemm(2, 2, 2, 1.0, &[0.0; 4], false, &[0.0; 5], true, 0.0, &mut c).is_err());
        assert!(gemm(2, 2, 3, 1.0, &[0.0; 4], false, &[0.0; 6], false, 0.0, &mut c).is_err());
        assert!(gemm(
            usize::MAX,
            2,
            2,
            1.0,
            &[],
            false,
            &[0.0; 4],
            false,
            0.0,
            &mut c
        )
        .is_err());
        assert_eq!(c, vec![0.0; 4]);
        // The strided core rejects views that would leave their slice.
        let r = sgemm_strided(
            (2, 2, 2),
            1.0,
            (&[0.0; 4], 3, 1),
            (&[0.0; 4], 2, 1),
            0.0,
            (&mut c, 2),
        );
        assert!(r.is_err());
        let r = sgemm_strided(
            (2, 2, 2),
            1.0,
            (&[0.0; 4], 2, 1),
            (&[0.0; 4], 2, 1),
            0.0,
            (&mut c, 1),
        );
        assert!(r.is_err());
    }
}
