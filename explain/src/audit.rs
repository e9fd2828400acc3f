//! The per-layer relevance audit: where did the relevance go, and was it conserved?
//!
//! For every labelled node the backward walk reached (layer outputs, the input), the
//! relevance sum per sample, and its conservation error against the seed:
//! `|sum R - sum seed| / sum |seed|`.
//!
//! # Reading the rows
//!
//! Rows run from the output down to the input. A row's *sum* is the total relevance that
//! reached that layer's output; the *error* compares it with the seed. An LRP rule that
//! conserves (LRP-0 without biases, say) keeps every row's sum equal to the seed's, so the
//! error stays at rounding level. Real models have biases and stabilisers, which keep a
//! share of the relevance by design (see `rules::affine`, "Why it conserves"): the error
//! then grows layer by layer by that share, and a large jump at one row points at the
//! layer that absorbed (or leaked) relevance. For gradients the sums are not meant to be
//! conserved and the error column only describes the signal. [`crate::verify()`] goes
//! further: per layer, it separates what biases and stabilisers absorb from a leak.

use rayon::prelude::*;
use relprop_core::kernels::split::may_split;
use relprop_core::{NodeId, Signals, Tape, Tensor};
use std::fmt;

/// One audited node.
#[derive(Clone, Debug)]
pub struct AuditRow {
    /// Node id on the tape.
    pub node: NodeId,
    /// The node's label (layer name, or `input`).
    pub label: String,
    /// The node's op name.
    pub op: String,
    /// Relevance sum per sample.
    pub sums: Vec<f64>,
    /// Conservation error per sample.
    pub errors: Vec<f64>,
}

impl AuditRow {
    /// The largest conservation error over the batch.
    pub fn max_error(&self) -> f64 {
        self.errors.iter().fold(0.0, |m, &e| m.max(e))
    }
}

/// The audit of one attribution.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    /// Name of the method and rules.
    pub method: String,
    /// Seed sum per sample (what conserving rules should keep).
    pub seed_sums: Vec<f64>,
    /// Sum of absolute seed values per sample (the error's scale).
    pub seed_abs: Vec<f64>,
    /// One row per labelled node, from the output down to the input.
    pub rows: Vec<AuditRow>,
    /// Remarks (saturated softmax, zero maps, ...).
    pub notes: Vec<String>,
}

/// Per-sample sums of a `[n, ...]` tensor, in f64.
///
/// The audit sums every labelled node's signal, so this runs over every
/// activation of a batch: samples go to rayon threads, and eight independent
/// f64 accumulators let the loop vectorise (a single running f64 sum is
/// bound by the latency of one addition per element).
pub fn per_sample_sums(t: &Tensor) -> Vec<f64> {
    let n = t.shape().first().copied().unwrap_or(1).max(1);
    let per = (t.numel() / n).max(1);
    let sum = |c: &[f32]| {
        let mut acc = [0.0f64; 8];
        let mut lanes = c.chunks_exact(8);
        for l in &mut lanes {
            acc.iter_mut().zip(l).for_each(|(a, &v)| *a += v as f64);
        }
        acc.iter().sum::<f64>() + lanes.remainder().iter().map(|&v| v as f64).sum::<f64>()
    };
    if t.numel() >= 1 << 16 && may_split() {
        t.data().par_chunks(per).map(sum).collect()
    } else {
        t.data().chunks(per).map(sum).collect()
    }
}

impl Audit {
    /// Audits a weighted sum of backward walks over the same tape: `sum_k coef_k[i] * signals_k`
    /// for sample `i` (one walk with coefficient 1 is the common case).
    pub fn new(
        method: &str,
        tape: &Tape,
        input: NodeId,
        parts: &[(Vec<f64>, &Signals)],
        seed: &Tensor,
    ) -> Audit {
        let seed_sums = per_sample_sums(seed);
        let seed_abs = per_sample_sums(&seed.abs());
        let mut rows = Vec::new();
        for id in (0..tape.len()).rev() {
            let Ok(node) = tape.node(id) else { continue };
            // The input, and every labelled op node (parameters are leaves: skipped).
            let label = match &node.label {
                _ if id == input => "input".to_string(),
                Some(l) if !node.op.inputs().is_empty() => l.clone(),
                _ => continue,
            };
            let mut sums = vec![0.0; seed_sums.len()];
            let mut reached = false;
            for (coef, signals) in parts {
                if let Some(s) = signals.get(id) {
                    reached = true;
                    for (i, v) in per_sample_sums(s).into_iter().enumerate().take(sums.len()) {
                        sums[i] += coef.get(i).copied().unwrap_or(1.0) * v;
                    }
                }
            }
            if !reached {
                continue;
            }
            let errors = sums
                .iter()
                .zip(seed_sums.iter().zip(&seed_abs))
                .map(|(s, (t, a))| if *a > 0.0 { (s - t).abs() / a } else { s.abs() })
                .collect();
            rows.push(AuditRow {
                node: id,
                label,
                op: node.op.name().to_string(),
                sums,
                errors,
            });
        }
        Audit {
            method: method.to_string(),
            seed_sums,
            seed_abs,
            rows,
            notes: Vec::new(),
        }
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.seed_sums.len().max(1) as f64;
        writeln!(
            f,
            "relevance audit: {} (sums are means over {} samples)",
            self.method,
            self.seed_sums.len()
        )?;
        writeln!(
            f,
            "| node | op | relevance sum | conservation error (max) |"
        )?;
        writeln!(f, "|---|---|---:|---:|")?;
        writeln!(
            f,
            "| seed | logits | {:+.6} | |",
            self.seed_sums.iter().sum::<f64>() / n
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {} | {:+.6} | {:.2e} |",
                r.label,
                r.op,
                r.sums.iter().sum::<f64>() / n,
                r.max_error()
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
