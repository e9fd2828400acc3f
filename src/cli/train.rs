//! `relprop train MODEL`: trains a zoo model from its recipe and saves a checkpoint.

use super::error::CliResult;
use super::limits::{check_count, MAX_EPOCHS};
use super::models::architecture;
use relprop::nn::io::Checkpoint;
use relprop::nn::state::state_dict;
use relprop::zoo::training;
use std::path::PathBuf;

/// Trains `name` and writes the checkpoint (default: `zoo/weights/<name>.ckpt` inside the
/// repository, which the next build embeds; elsewhere `<name>.ckpt`).
pub fn run(
    name: &str,
    seed: u64,
    epochs: Option<usize>,
    out: Option<PathBuf>,
    quiet: bool,
) -> CliResult {
    let arch = architecture(name)?;
    if let Some(epochs) = epochs {
        check_count("--epochs", epochs, MAX_EPOCHS)?;
    }
    let out = out.unwrap_or_else(|| {
        let repo = PathBuf::from("zoo/weights");
        if repo.is_dir() {
            repo.join(format!("{name}.ckpt"))
        } else {
            PathBuf::from(format!("{name}.ckpt"))
        }
    });
    // Checked before training, not after: a bad path must not cost the whole run.
    relprop::nn::io::check_outputs(&[&out], &[])?;
    let r = training::recipe(arch);
    outln!(
        "training {name} ({} epochs, batch {}, Adam {} with cosine decay, seed {seed})",
        epochs.unwrap_or(r.epochs),
        r.batch_size,
        r.lr
    );
    let trained = training::train(arch, seed, epochs, quiet)?;
    let accuracy = trained.meta.held_out_accuracy.unwrap_or(f32::NAN);
    let ckpt = Checkpoint {
        architecture: arch.name().into(),
        params: state_dict(&trained.model),
        meta: trained.meta,
    };
    let what = if name == "multidigit" {
        "top-2 accuracy on 2,000 test composites"
    } else {
        "accuracy on the 2,000 test digits"
    };
    outln!("held-out {what}: {:.2}%", 100.0 * accuracy);
    outln!("writing {}", out.display());
    ckpt.save(&out)?;
    Ok(())
}
