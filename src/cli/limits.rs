//! Upper limits of the counts the command line accepts, checked before anything is
//! allocated: a mistyped huge count gets a message naming its option, not an
//! out-of-memory abort or a capacity-overflow panic.

use super::error::{CliError, CliResult};

/// `explain --steps`: SmoothGrad samples or integrated-gradients steps (the library's cap).
pub const MAX_STEPS: usize = relprop::explain::attributors::MAX_STEPS;
/// `explain --window`: an occlusion window wider than any image relprop reads is a typo.
pub const MAX_WINDOW: usize = 4096;
/// `eval discrimination --n`: each composite is a 28x56 image explained for two classes;
/// 100,000 of them are about 600 MB of inputs and hours of work.
pub const MAX_COMPOSITES: usize = 100_000;
/// `bench --batch-sizes`: 4,096 inputs of `vgg_small` already need gigabytes of activations.
pub const MAX_BATCH: usize = 4096;
/// `bench --min-seconds`: an hour per cell is already far more than a stable median needs.
pub const MAX_MIN_SECONDS: f64 = 3600.0;
/// `train --epochs`: the recipes train for at most a few dozen.
pub const MAX_EPOCHS: usize = 1000;

/// Errors unless `1 <= value <= max`, naming the option.
pub fn check_count(option: &str, value: usize, max: usize) -> CliResult {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(CliError::input(format!(
            "{option} must be between 1 and {max}, got {value}"
        )))
    }
}
