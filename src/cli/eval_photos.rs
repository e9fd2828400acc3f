//! `relprop eval discrimination --model efficientnet_lite0`: class discrimination on
//! pairs of the bundled photos side by side.

use super::error::{CliError, CliResult};
use super::eval::{check_methods, print_discrimination, write_discrimination_csv};
use super::models::load;
use relprop::evaluation::photo_pairs::{photo_discrimination, PHOTO_METHODS};
use relprop::nn::progress::Progress;
use relprop::zoo::photos::PHOTOS;
use std::path::Path;

/// Runs the photo-pair table for `model` (only `efficientnet_lite0` takes photos).
pub fn run(model: &str, methods: &[String], csv: Option<&Path>) -> CliResult {
    if model != "efficientnet_lite0" {
        return Err(CliError::input(format!(
            "discrimination is measured on multidigit (digit composites) or efficientnet_lite0 (photo pairs), not {model}"
        )));
    }
    if let Some(csv) = csv {
        relprop::nn::io::check_outputs(&[csv], &[])?;
    }
    let methods = if methods.is_empty() {
        PHOTO_METHODS.to_vec()
    } else {
        check_methods(methods, &PHOTO_METHODS)?
    };
    let net = load(model, None)?;
    let names: Vec<&str> = PHOTOS.iter().map(|p| p.name).collect();
    outln!(
        "class discrimination: efficientnet_lite0 on every ordered pair of the bundled photos ({}) side by side (224x448), each explained for both photos' classes; means ± 95% CI",
        names.join(", ")
    );
    let pairs = PHOTOS.len() * (PHOTOS.len() - 1);
    let pb = Progress::new(Some(pairs), false, "composites");
    let rows = photo_discrimination(&net, &methods, |done, _| pb.set_position(done))?;
    pb.finish();
    print_discrimination(&rows)?;
    write_discrimination_csv(csv, &rows)
}
