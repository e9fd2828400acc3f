//! `relprop verify`: relevance conservation checked node by node, with an exit code.

use super::error::{CliError, CliResult};
use super::input::ModelInput;
use clap::Args;
use relprop::explain::batching::{chunk_len, verify_in_chunks};
use relprop::explain::verify::DEFAULT_TOLERANCE;
use relprop::explain::{Seed, Targets};

/// Everything `relprop verify` accepts.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Model, weights and input.
    #[command(flatten)]
    pub source: ModelInput,
    /// Rule set: zero, epsilon, epsilon-plus, epsilon-plus-flat, epsilon-alpha2-beta1,
    /// epsilon-alpha2-beta1-flat, epsilon-gamma-box, bounded-deep-taylor.
    #[arg(long, default_value = "epsilon-plus")]
    pub rules: String,
    /// Largest accepted local error, relative to the seed's absolute sum.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Explain this class for every sample (default: the predicted class).
    #[arg(long)]
    pub target: Option<usize>,
    /// Epsilon of the Epsilon rule.
    #[arg(long, default_value_t = 1e-6)]
    pub epsilon: f32,
    /// Lowest input value (ZBox).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub low: f32,
    /// Highest input value (ZBox).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub high: f32,
}

/// Runs the check and prints one row per node. Exit code 1 when some node leaks more than
/// the tolerance (naming it), 2 for bad input, 0 otherwise.
pub fn run(args: &VerifyArgs) -> CliResult {
    if !args.tolerance.is_finite() || args.tolerance < 0.0 {
        return Err(CliError::input(format!(
            "--tolerance must be a finite number >= 0, got {}",
            args.tolerance
        )));
    }
    let composite = super::explain::composite(&args.rules, args.epsilon, args.low, args.high)?;
    let (input, model) = args.source.load()?;
    let targets = match args.target {
        Some(t) => Targets::Class(t),
        None => Targets::Argmax,
    };
    // Chunked like `explain`: memory stays that of one chunk's recording.
    let v = verify_in_chunks(
        model.module(),
        &input.batch,
        &targets,
        &composite,
        &Seed::OneHot,
        args.tolerance,
        chunk_len(&input.batch),
    )?;
    out!("{v}");
    let bad = v.violations();
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = bad
        .iter()
        .map(|l| {
            format!(
                "{} ({}): local error {:.2e} beyond what biases and stabilisers absorb",
                l.label,
                l.op,
                l.max_local_error()
            )
        })
        .collect();
    Err(CliError {
        code: 1,
        message: format!(
            "relevance is not conserved within {:.1e} at {} node(s): {}",
            args.tolerance,
            bad.len(),
            names.join("; ")
        ),
    })
}
