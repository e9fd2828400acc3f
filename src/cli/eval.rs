//! `relprop eval discrimination|faithfulness`: the evaluation tables of the README.

use super::error::{CliError, CliResult};
use super::limits::{check_count, MAX_COMPOSITES};
use relprop::evaluation::{discrimination, faithfulness, DiscriminationRow, FaithfulnessRow};
use relprop::evaluation::{DISCRIMINATION_METHODS, FAITHFULNESS_METHODS};
use relprop::nn::progress::Progress;
use relprop::zoo::{digits, pretrained, Architecture};
use std::path::Path;

pub fn check_methods<'a>(methods: &'a [String], known: &[&str]) -> CliResult<Vec<&'a str>> {
    methods
        .iter()
        .map(|m| {
            if known.contains(&m.as_str()) {
                Ok(m.as_str())
            } else {
                Err(CliError::input(format!(
                    "unknown method '{m}' (expected: {})",
                    known.join(", ")
                )))
            }
        })
        .collect()
}

fn write_csv(path: Option<&Path>, header: &str, rows: Vec<String>) -> CliResult {
    if let Some(path) = path {
        let text = format!("{header}\n{}\n", rows.join("\n"));
        relprop::nn::io::write_atomic(path, text.as_bytes())?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}

/// Prints the discrimination table as Markdown.
pub fn print_discrimination(rows: &[DiscriminationRow]) -> CliResult {
    outln!("| method | pointing game | relevance mass accuracy | relevance rank accuracy | correlation of the two maps |");
    outln!("|---|---:|---:|---:|---:|");
    for r in rows {
        outln!(
            "| {} | {} | {} | {} | {} |",
            r.method,
            r.pointing,
            r.mass,
            r.rank,
            r.correlation
        );
    }
    Ok(())
}

/// `relprop eval discrimination`.
pub fn run_discrimination(
    n: usize,
    seed: u64,
    methods: &[String],
    csv: Option<&Path>,
) -> CliResult {
    check_count("--n", n, MAX_COMPOSITES)?;
    let methods = if methods.is_empty() {
        DISCRIMINATION_METHODS.to_vec()
    } else {
        check_methods(methods, &DISCRIMINATION_METHODS)?
    };
    let model = pretrained::load(Architecture::Multidigit)
        .map_err(|e| CliError::internal(e.to_string()))?;
    let data = digits::load().map_err(|e| CliError::internal(e.to_string()))?;
    outln!("class discrimination: multidigit, {n} test composites (seed {seed}), both classes explained; means ± 95% CI");
    let pb = Progress::new(Some(n), false, "composites");
    let rows = discrimination(&model, data, n, seed, &methods, |done| {
        pb.set_position(done)
    })?;
    pb.finish();
    print_discrimination(&rows)?;
    write_discrimination_csv(csv, &rows)
}

/// Writes the discrimination table as CSV when asked to.
pub fn write_discrimination_csv(csv: Option<&Path>, rows: &[DiscriminationRow]) -> CliResult {
    let csv_rows = rows
        .iter()
        .map(|r| {
            let f = |m: &relprop::explain::metrics::MeanCi| {
                format!("{:.4},{:.4}", m.mean, m.half_width)
            };
            format!(
                "{},{},{},{},{}",
                r.method,
                f(&r.pointing),
                f(&r.mass),
                f(&r.rank),
                f(&r.correlation)
            )
        })
        .collect();
    write_csv(
        csv,
        "method,pointing,pointing_ci,mass,mass_ci,rank,rank_ci,correlation,correlation_ci",
        csv_rows,
    )
}

/// Prints the faithfulness table as Markdown.
pub fn print_faithfulness(rows: &[FaithfulnessRow]) -> CliResult {
    outln!("| method | AOPC (target logit) |");
    outln!("|---|---:|");
    for r in rows {
        outln!("| {} | {} |", r.method, r.aopc);
    }
    Ok(())
}

/// `relprop eval faithfulness`.
pub fn run_faithfulness(n: usize, seed: u64, methods: &[String], csv: Option<&Path>) -> CliResult {
    let methods = if methods.is_empty() {
        FAITHFULNESS_METHODS.to_vec()
    } else {
        check_methods(methods, &FAITHFULNESS_METHODS)?
    };
    let (x, labels) = relprop::zoo::training::test_digits()?;
    if n == 0 || n > labels.len() {
        return Err(CliError::input(format!(
            "--n must be between 1 and {}",
            labels.len()
        )));
    }
    // Every k-th test digit, so all classes are represented for small n.
    let step = labels.len() / n;
    let idx: Vec<usize> = (0..n).map(|i| i * step).collect();
    let x = relprop::nn::train::gather_rows(&x, &idx)?;
    let labels: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
    let model =
        pretrained::load(Architecture::Lenet5).map_err(|e| CliError::internal(e.to_string()))?;
    outln!(
        "faithfulness: lenet5, {n} test digits, {} pixels set to 0 per step for {} steps, most relevant first; AOPC of the target logit, means ± 95% CI",
        relprop::evaluation::PIXELS_PER_STEP,
        relprop::evaluation::STEPS
    );
    let pb = Progress::new(Some(methods.len()), false, "methods");
    let rows = faithfulness(&model, &x, &labels, &methods, seed, |done| {
        pb.set_position(done)
    })?;
    pb.finish();
    print_faithfulness(&rows)?;
    let csv_rows = rows
        .iter()
        .map(|r| format!("{},{:.4},{:.4}", r.method, r.aopc.mean, r.aopc.half_width))
        .collect();
    write_csv(csv, "method,aopc,aopc_ci", csv_rows)
}
