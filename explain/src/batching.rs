//! Large batches explained in chunks.
//!
//! Gradients and LRP maps are per-sample: sample `i`'s map depends on sample `i` only
//! (`tests/conservation_props` checks this). A large batch is therefore explained a chunk
//! at a time and the chunks are joined. The maps are those of the whole batch; what
//! changes is that a chunk's activations (a few MB) stay in the caches between the
//! forward pass, the modified passes and the backward walk, where a 256-sample batch's
//! (tens of MB per layer) go to memory and back at every step. The conservation check
//! ([`verify_in_chunks`]) is chunked the same way, so its memory is that of one chunk's
//! recording whatever the batch size.

use crate::audit::{Audit, AuditRow};
use crate::composite::Composite;
use crate::method::Attribution;
use crate::seed::{Seed, Targets};
use crate::verify::{verify, Verification};
use relprop_core::kernels::split::map_items;
use relprop_core::{Error, Result, Tensor};
use relprop_nn::Module;

/// Samples per chunk at most: measured on `vgg_small` and `lenet5`, 32 to 64 samples per
/// pass were fastest; a few samples more or less cost nothing measurable.
pub const CHUNK: usize = 64;

/// Input values per chunk that [`chunk_len`] aims for: 64 samples of a 32x32 RGB image.
/// A chunk's activations scale with its input, and with an ImageNet-sized sample (150,528
/// values; EfficientNet-Lite0's activations are some 50 times that) a chunk of one is
/// already larger than the caches.
pub const CHUNK_VALUES: usize = 64 * 3 * 32 * 32;

/// Samples per chunk for the batch `x`: [`CHUNK`], or fewer so that a chunk holds about
/// [`CHUNK_VALUES`] input values (at least one sample).
pub fn chunk_len(x: &Tensor) -> usize {
    let per_sample: usize = x.shape().iter().skip(1).product();
    (CHUNK_VALUES / per_sample.max(1)).clamp(1, CHUNK)
}

/// Explains `x` a chunk of at most `chunk` samples at a time with `explain_chunk` and
/// joins the results. `targets` apply to the whole batch.
///
/// Chunks of one sample run side by side, one per thread, each with its kernels on its own
/// thread: a single large sample keeps both cores busy only by splitting every kernel,
/// which costs copies and synchronisation at each of its many small layers, while whole
/// samples in parallel need neither (and the maps are the same, sample by sample).
pub fn in_chunks(
    x: &Tensor,
    targets: &Targets,
    chunk: usize,
    explain_chunk: impl Fn(&Tensor, &Targets) -> Result<Attribution> + Sync,
) -> Result<Attribution> {
    let n = x.shape().first().copied().unwrap_or(0);
    if let Targets::PerSample(v) = targets {
        Targets::check_count(v.len(), n)?;
    }
    let chunk = chunk.max(1);
    let starts: Vec<usize> = (0..n).step_by(chunk).collect();
    let run = |start: usize| -> Result<(usize, Attribution)> {
        let end = (start + chunk).min(n);
        let t = chunk_targets(targets, start, end);
        Ok((start, explain_chunk(&x.batch_range(start, end)?, &t)?))
    };
    let parts = map_items(&starts, chunk == 1, run)?;
    join(parts)
}

/// The targets of samples `start..end` of a batch.
pub fn chunk_targets(targets: &Targets, start: usize, end: usize) -> Targets {
    match targets {
        Targets::PerSample(v) => Targets::PerSample(v[start..end].to_vec()),
        other => other.clone(),
    }
}

/// [`verify`] run on at most `chunk` samples at a time, with the per-sample columns of the
/// chunks joined: the same rows and numbers as one pass over the whole batch (every
/// quantity of the check is per sample), in the memory of one chunk.
pub fn verify_in_chunks(
    model: &dyn Module,
    x: &Tensor,
    targets: &Targets,
    composite: &Composite,
    seed: &Seed,
    tolerance: f64,
    chunk: usize,
) -> Result<Verification> {
    let n = x.shape().first().copied().unwrap_or(0);
    if let Targets::PerSample(v) = targets {
        Targets::check_count(v.len(), n)?;
    }
    let chunk = chunk.max(1);
    if n <= chunk {
        return verify(model, x, targets, composite, seed, tolerance);
    }
    let mut joined: Option<Verification> = None;
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let t = chunk_targets(targets, start, end);
        let mut part = verify(
            model,
            &x.batch_range(start, end)?,
            &t,
            composite,
            seed,
            tolerance,
        )?;
        renumber_notes(&mut part.notes, start);
        joined = Some(match joined {
            None => part,
            Some(acc) => append_verification(acc, part)?,
        });
    }
    joined.ok_or_else(|| Error::invalid("verify", "the batch is empty"))
}

/// Appends the per-sample columns of `next` to `acc` (same model, so the same rows).
fn append_verification(mut acc: Verification, next: Verification) -> Result<Verification> {
    let same_rows = acc.layers.len() == next.layers.len()
        && acc
            .layers
            .iter()
            .zip(&next.layers)
            .all(|(a, b)| a.node == b.node);
    if !same_rows {
        return Err(Error::invalid(
            "verify",
            "chunks of one batch reached different layers",
        ));
    }
    acc.targets.extend(next.targets);
    acc.seed_sums.extend(next.seed_sums);
    acc.seed_abs.extend(next.seed_abs);
    for (row, more) in acc.layers.iter_mut().zip(next.layers) {
        row.has_bias |= more.has_bias;
        row.sums.extend(more.sums);
        row.local_errors.extend(more.local_errors);
        row.absorbed.extend(more.absorbed);
        row.cumulative_errors.extend(more.cumulative_errors);
    }
    for note in next.notes {
        if !acc.notes.contains(&note) {
            acc.notes.push(note);
        }
    }
    Ok(acc)
}

/// Joins chunk attributions (each with the index of its first sample), in order.
fn join(parts: Vec<(usize, Attribution)>) -> Result<Attribution> {
    let (mut relevance, mut logits, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    let mut audit: Option<Audit> = None;
    for (start, part) in parts {
        relevance.push(part.relevance);
        logits.push(part.logits);
        targets.extend(part.targets);
        audit = Some(match audit {
            None => shift_notes(part.audit, start),
            Some(acc) => append_audit(acc, shift_notes(part.audit, start))?,
        });
    }
    Ok(Attribution {
        relevance: Tensor::concat_batch(&relevance)?,
        logits: Tensor::concat_batch(&logits)?,
        targets,
        audit: audit.unwrap_or_default(),
    })
}

/// Joins the audits of a batch's chunks (each with the index of its first sample), in
/// order, into the audit of the whole batch.
pub fn join_audits(parts: Vec<(usize, Audit)>) -> Result<Audit> {
    let mut joined: Option<Audit> = None;
    for (start, part) in parts {
        joined = Some(match joined {
            None => shift_notes(part, start),
            Some(acc) => append_audit(acc, shift_notes(part, start))?,
        });
    }
    Ok(joined.unwrap_or_default())
}

/// Appends the per-sample columns of `next` to `acc` (same model, so the same rows).
fn append_audit(mut acc: Audit, next: Audit) -> Result<Audit> {
    let same_rows = acc.rows.len() == next.rows.len()
        && acc
            .rows
            .iter()
            .zip(&next.rows)
            .all(|(a, b)| a.node == b.node);
    if !same_rows {
        return Err(Error::invalid(
            "explain",
            "chunks of one batch audited different layers",
        ));
    }
    acc.seed_sums.extend(next.seed_sums);
    acc.seed_abs.extend(next.seed_abs);
    for (row, more) in acc.rows.iter_mut().zip(next.rows) {
        let AuditRow { sums, errors, .. } = more;
        row.sums.extend(sums);
        row.errors.extend(errors);
    }
    for note in next.notes {
        if !acc.notes.contains(&note) {
            acc.notes.push(note);
        }
    }
    Ok(acc)
}

/// Renumbers an audit's notes by batch index (see [`renumber_notes`]).
fn shift_notes(mut audit: Audit, start: usize) -> Audit {
    renumber_notes(&mut audit.notes, start);
    audit
}

/// Notes name samples as `sample {i}: ...` by their index in the chunk; renumbers them
/// by their index in the batch.
fn renumber_notes(notes: &mut [String], start: usize) {
    for note in notes.iter_mut() {
        let Some(rest) = note.strip_prefix("sample ") else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let (Ok(i), Some(tail)) = (rest[..digits].parse::<usize>(), rest.get(digits..)) {
            if tail.starts_with(':') {
                *note = format!("sample {}{tail}", i + start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note_audit(notes: &[&str]) -> Audit {
        Audit {
            notes: notes.iter().map(|s| s.to_string()).collect(),
            ..Audit::default()
        }
    }

    #[test]
    fn sample_notes_are_renumbered_by_batch_index() {
        let a = shift_notes(
            note_audit(&["sample 3: softmax saturated", "CLRP keeps", "sample x: y"]),
            64,
        );
        assert_eq!(
            a.notes,
            ["sample 67: softmax saturated", "CLRP keeps", "sample x: y"]
        );
    }

    #[test]
    fn audits_of_different_layers_do_not_join() {
        let row = |node| AuditRow {
            node,
            label: "l".into(),
            op: "linear".into(),
            sums: vec![1.0],
            errors: vec![0.0],
        };
        let mut a = note_audit(&["shared"]);
        a.rows.push(row(3));
        let mut b = note_audit(&["shared", "new"]);
        b.rows.push(row(3));
        let joined = append_audit(a.clone(), b).unwrap();
        assert_eq!(joined.rows[0].sums, [1.0, 1.0]);
        assert_eq!(joined.notes, ["shared", "new"]);
        let mut c = note_audit(&[]);
        c.rows.push(row(4));
        assert!(append_audit(a, c).is_err());
    }

    #[test]
    fn verification_in_chunks_equals_one_pass() {
        use relprop_core::Rng;
        use relprop_nn::{Linear, Relu, Sequential};
        let mut rng = Rng::new(5);
        let net = Sequential::new("")
            .with(Linear::new("fc1", 6, 8, true, &mut rng))
            .with(Relu::named("relu"))
            .with(Linear::new("fc2", 8, 3, true, &mut rng));
        let x = Tensor::rand_uniform(&[7, 6], -1.0, 1.0, 2);
        let targets = Targets::PerSample(vec![0, 1, 2, 0, 1, 2, 0]);
        let rules = Composite::epsilon_plus(1e-6);
        let whole = verify(&net, &x, &targets, &rules, &Seed::OneHot, 1e-3).unwrap();
        let parts = verify_in_chunks(&net, &x, &targets, &rules, &Seed::OneHot, 1e-3, 3).unwrap();
        assert_eq!(parts.targets, whole.targets);
        assert_eq!(parts.seed_sums, whole.seed_sums);
        assert_eq!(parts.layers.len(), whole.layers.len());
        for (a, b) in parts.layers.iter().zip(&whole.layers) {
            assert_eq!((a.node, &a.label), (b.node, &b.label));
            assert_eq!(a.sums.len(), 7);
            for (u, v) in a.sums.iter().zip(&b.sums) {
                assert!(
                    (u - v).abs() <= 1e-5 * v.abs().max(1.0),
                    "{}: {u} vs {v}",
                    a.label
                );
            }
            assert_eq!(a.local_errors.len(), b.local_errors.len());
            assert_eq!(a.absorbed.len(), b.absorbed.len());
        }
        // A target list of the wrong length is refused before any chunk runs.
        let short = Targets::PerSample(vec![0; 6]);
        assert!(verify_in_chunks(&net, &x, &short, &rules, &Seed::OneHot, 1e-3, 3).is_err());
    }
}
