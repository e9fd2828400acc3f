//! `Dropout`: in training, zeroes each value with probability `p` and scales the rest by
//! `1 / (1 - p)`; in evaluation, the identity (nothing is recorded).

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{Error, NodeId, Result, Rng, Tape, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};

/// Inverted dropout with a seeded mask, as `torch.nn.Dropout`.
///
/// The mask is recorded as a constant leaf and applied by one `mul` node (labelled with
/// the layer's name), so the backward walk passes signals only through kept units. Each
/// training forward draws a fresh mask from `seed` and a call counter, so runs are
/// reproducible while successive batches still see different masks.
#[derive(Debug)]
pub struct Dropout {
    name: String,
    p: f32,
    seed: u64,
    calls: AtomicU64,
}

impl Dropout {
    /// A dropout layer dropping with probability `p` in `[0, 1]`.
    pub fn new(name: impl Into<String>, p: f32, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout",
                format!("the drop probability must be in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout {
            name: name.into(),
            p,
            seed,
            calls: AtomicU64::new(0),
        })
    }

    /// The layer's full name, which labels its `mul` node in training mode.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// The mask for one call: `0` with probability `p`, else `1 / (1 - p)`.
    fn mask(&self, shape: &[usize]) -> Result<Tensor> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        // Mix the call counter in so each call's stream is unrelated to the last one's.
        let mut rng = Rng::new(self.seed ^ call.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let keep = if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        };
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                if (rng.next_f64() as f32) < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        Tensor::from_vec(data, shape)
    }
}

impl Module for Dropout {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        match mode {
            Mode::Eval => Ok(x),
            Mode::Train => {
                let mask = self.mask(tape.value(x)?.shape())?;
                let m = tape.constant(mask);
                let y = tape.mul(x, m)?;
                labelled(tape, y, &self.name)
            }
        }
    }

    fn describe(&self) -> String {
        line(Some(&self.name), &format!("dropout p={}", self.p))
    }
}
