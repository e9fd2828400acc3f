//! A small seeded random generator, so every random tensor in relprop is reproducible
//! without pulling a crate for a dozen lines.

/// SplitMix64: tiny, fast, and good enough for initialisation, noise and data shuffling.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let v = lo as f64 + (hi as f64 - lo as f64) * self.next_f64();
        // Rounding to f32 can land exactly on `hi`; keep the interval half-open.
        let v = v as f32;
        if v >= hi && hi > lo {
            lo.max(f32::from_bits(hi.to_bits() - 1))
        } else {
            v
        }
    }

    /// Standard normal by Box-Muller (one value per call; simplicity over speed).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.next_f64(); // in (0, 1], so ln is finite
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (`n > 0`), by rejection so every value is equally likely.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n.max(1) as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_stream_and_ranges_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let u = a.uniform(-2.0, 3.0);
            b.uniform(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&u));
            assert!(a.below(5) < 5);
            b.below(5);
        }
        let mean: f64 = (0..20000).map(|_| a.normal() as f64).sum::<f64>() / 20000.0;
        assert!(mean.abs() < 0.05, "normal mean {mean}");
    }
}
