//! Large batches explained in chunks.
//!
//! Gradients and LRP maps are per-sample: sample `i`'s map depends on sample `i` only
//! (`tests/conservation_props` checks this). A large batch is therefore explained a chunk
//! at a time and the chunks are joined. The maps are those of the whole batch; what
//! changes is that a chunk's activations (a few MB) stay in the caches between the
//! forward pass, the modified passes and the backward walk, where a 256-sample batch's
//! (tens of MB per layer) go to memory and back at every step.

use crate::audit::{Audit, AuditRow};
use crate::method::Attribution;
use crate::seed::Targets;
use relprop_core::{Error, Result, Tensor};

/// Samples per chunk: measured on `vgg_small` and `lenet5`, 32 to 64 samples per pass
/// were fastest; a few samples more or less cost nothing measurable.
pub const CHUNK: usize = 64;

/// Explains `x` a chunk of at most `chunk` samples at a time with `explain_chunk` and
/// joins the results. `targets` apply to the whole batch.
pub fn in_chunks(
    x: &Tensor,
    targets: &Targets,
    chunk: usize,
    mut explain_chunk: impl FnMut(&Tensor, &Targets) -> Result<Attribution>,
) -> Result<Attribution> {
    let n = x.shape().first().copied().unwrap_or(0);
    if let Targets::PerSample(v) = targets {
        Targets::check_count(v.len(), n)?;
    }
    let chunk = chunk.max(1);
    let mut parts = Vec::with_capacity(n.div_ceil(chunk));
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let t = match targets {
            Targets::PerSample(v) => Targets::PerSample(v[start..end].to_vec()),
            other => other.clone(),
        };
        parts.push((start, explain_chunk(&x.batch_range(start, end)?, &t)?));
    }
    join(parts)
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

/// Notes name samples as `sample {i}: ...` by their index in the chunk; renumbers them
/// by their index in the batch.
fn shift_notes(mut audit: Audit, start: usize) -> Audit {
    for note in &mut audit.notes {
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
    audit
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
}
