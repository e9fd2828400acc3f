//! The long-running stable fuzz driver and the corpus-seed writer (both ignored).

use crate::files::*;
use crate::loaders::*;
use crate::mutate::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Random mutations of every loader's seeds, `RELPROP_FUZZ_ITERS` per loader (default
/// 20,000; the digit sheet gets a hundredth), from `RELPROP_FUZZ_SEED` (default: the
/// clock), restricted to `RELPROP_FUZZ_TARGET` when set. A failure names the seed to rerun.
/// With `RELPROP_FUZZ_KEEP_GOING=1`, loader panics are counted (by message) instead of
/// stopping the run, and reported, and failed on, at the end.
#[test]
#[ignore = "long-running fuzz driver; see docs/FUZZING.md"]
fn fuzz_loaders_for_a_long_time() {
    let iters: usize = env_or("RELPROP_FUZZ_ITERS", 20_000);
    let seed: u64 = env_or(
        "RELPROP_FUZZ_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    let only = std::env::var("RELPROP_FUZZ_TARGET").ok();
    let keep_going = std::env::var("RELPROP_FUZZ_KEEP_GOING").is_ok_and(|v| v == "1");
    let hook = keep_going.then(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        previous
    });
    let mut panics = Vec::new();
    for loader in LOADERS {
        if only.as_deref().is_some_and(|o| o != loader.name()) {
            continue;
        }
        let n = if loader == Loader::Digits {
            (iters / 100).max(1)
        } else {
            iters
        };
        let t = Instant::now();
        let c = campaign(loader, n, seed, Duration::from_secs(10), keep_going);
        let panicked: usize = c.panics.iter().map(|p| p.1).sum();
        println!(
            "{:<12} seed {seed}: {} runs in {:.1?} ({} loaded, {} refused, {panicked} panicked), slowest {:.1?}, most memory {} bytes",
            loader.name(),
            c.runs,
            t.elapsed(),
            c.ok,
            c.errors,
            c.slowest,
            c.most_memory
        );
        for (message, count, first) in c.panics {
            println!("  {count} x panic (first at mutation {first}): {message}");
            panics.push((loader.name(), message));
        }
    }
    if let Some(previous) = hook {
        std::panic::set_hook(previous);
    }
    assert!(panics.is_empty(), "loaders panicked: {panics:?}");
}

/// Writes the seed files of every loader (the valid files the mutation tests start from)
/// as a starting corpus for the cargo-fuzz targets: `<dir>/<target>/seed-<k>`, with `dir`
/// from `RELPROP_FUZZ_SEEDS_DIR` (see docs/FUZZING.md).
#[test]
#[ignore = "writes files; run it to seed the cargo-fuzz corpus"]
fn write_fuzz_seeds() {
    let dir = PathBuf::from(
        std::env::var_os("RELPROP_FUZZ_SEEDS_DIR").expect("set RELPROP_FUZZ_SEEDS_DIR"),
    );
    for loader in LOADERS {
        let target = dir.join(loader.name());
        std::fs::create_dir_all(&target).unwrap();
        let files: Vec<Vec<u8>> = match loader {
            // The digits target: selector byte, then (odd) a manifest, a 0 byte and a sheet.
            Loader::Digits => {
                let manifest = "counts: 1 1 0 0 0 0 0 0 0 0\ngrid_cols: 2\ntile: 28 28\n";
                let sheet = png_file(56, 28, 8, 0, None, &[128; 56]);
                let mut small = vec![1u8];
                small.extend_from_slice(manifest.as_bytes());
                small.push(0);
                small.extend_from_slice(&sheet);
                let mut bundled = vec![0u8];
                bundled.extend_from_slice(&DIGIT_SHEET[..4096.min(DIGIT_SHEET.len())]);
                vec![small, bundled]
            }
            // Only small seeds: libFuzzer's default input limit is 4 KiB.
            _ => seeds(loader)
                .into_iter()
                .filter(|s| s.len() <= 1 << 16)
                .collect(),
        };
        for (k, bytes) in files.iter().enumerate() {
            std::fs::write(target.join(format!("seed-{k}")), bytes).unwrap();
        }
        println!("{}: {} seeds", loader.name(), files.len());
    }
}
