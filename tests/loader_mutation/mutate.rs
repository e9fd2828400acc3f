//! Random mutations and mutation campaigns.

use crate::files::*;
use crate::loaders::*;
use relprop::core::Rng;
use std::time::Duration;

pub(crate) const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7F,
    0xFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 31,
    1 << 40,
    u64::MAX,
    1 << 62,
];

/// One to four random edits: bit flips, byte writes, interesting integers, insertions,
/// deletions, truncation, duplicated chunks and splices from `other`.
pub(crate) fn mutate(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        let at = rng.below(len.max(1));
        match rng.below(9) {
            0 if len > 0 => d[at] ^= 1 << rng.below(8),
            1 if len > 0 => d[at] = rng.below(256) as u8,
            2 if len > 0 => d[at] = [0u8, 1, 0x7F, 0x80, 0xFF][rng.below(5)],
            3 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let big_endian = rng.below(2) == 0;
                let bytes = if big_endian {
                    v.to_be_bytes()[8 - width..].to_vec()
                } else {
                    v.to_le_bytes()[..width].to_vec()
                };
                for (k, b) in bytes.into_iter().enumerate() {
                    if let Some(slot) = d.get_mut(at + k) {
                        *slot = b;
                    }
                }
            }
            4 => {
                let extra: Vec<u8> = (0..1 + rng.below(16))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                d.splice(at..at, extra);
            }
            5 if len > 0 => {
                let end = (at + 1 + rng.below(32)).min(len);
                d.drain(at..end);
            }
            6 => d.truncate(at),
            7 if len > 0 => {
                let end = (at + 1 + rng.below(64)).min(len);
                let chunk = d[at..end].to_vec();
                let to = rng.below(len);
                d.splice(to..to, chunk);
            }
            8 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                let to_end = (at + (end - from)).min(len);
                d.splice(at..to_end, other[from..end].iter().copied());
            }
            _ => {}
        }
    }
    d
}

/// The result counts of a mutation campaign.
#[derive(Default, Debug)]
pub(crate) struct Campaign {
    pub(crate) runs: usize,
    pub(crate) ok: usize,
    pub(crate) errors: usize,
    pub(crate) slowest: Duration,
    pub(crate) most_memory: usize,
    /// With `keep_going`: each distinct panic message, its count and first mutation.
    pub(crate) panics: Vec<(String, usize, usize)>,
}

/// Runs `iters` random mutations of the loader's seeds; panics on the first violation, or
/// with `keep_going` records loader panics and carries on.
pub(crate) fn campaign(
    loader: Loader,
    iters: usize,
    seed: u64,
    max_time: Duration,
    keep_going: bool,
) -> Campaign {
    let seeds = seeds(loader);
    let mut rng = Rng::new(seed);
    let mut c = Campaign::default();
    for it in 0..iters {
        let base = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let mut bytes = mutate(&mut rng, base, other);
        if rng.below(5) != 0 {
            loader.repair(&mut bytes);
        }
        let what = format!("mutation {it} of campaign seed {seed}");
        let (result, usage) = run_checked(loader, &bytes);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(panic) if keep_going => {
                match c.panics.iter_mut().find(|(m, _, _)| *m == panic) {
                    Some(entry) => entry.1 += 1,
                    None => c.panics.push((panic, 1, it)),
                }
                c.runs += 1;
                continue;
            }
            Err(panic) => panic!(
                "{} panicked on {what} ({} bytes): {panic}\nreproduce: RELPROP_FUZZ_SEED={seed} RELPROP_FUZZ_TARGET={}",
                loader.name(),
                bytes.len(),
                loader.name()
            ),
        };
        assert!(
            usage.peak <= loader.memory_bound(bytes.len()),
            "{} took {} bytes on {what} ({} bytes)",
            loader.name(),
            usage.peak,
            bytes.len()
        );
        assert!(
            usage.elapsed <= max_time,
            "{} took {:?} on {what}",
            loader.name(),
            usage.elapsed
        );
        c.runs += 1;
        match outcome {
            Ok(()) => c.ok += 1,
            Err(_) => c.errors += 1,
        }
        c.slowest = c.slowest.max(usage.elapsed);
        c.most_memory = c.most_memory.max(usage.peak);
    }
    c
}
