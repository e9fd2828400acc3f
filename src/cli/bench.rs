//! `relprop bench`: milliseconds per batch (median of repeated runs) and explanations per
//! second, for every method the issue tracker compares against PyTorch + Zennit.

use super::error::{CliError, CliResult};
use super::limits::{check_count, MAX_BATCH, MAX_MIN_SECONDS};
use super::models::load_any;
use relprop::core::{Result, Tape, Tensor};
use relprop::explain::{explain, Composite, Method, Seed, Targets};
use relprop::nn::train::{predict, Labels};
use relprop::nn::{Adam, Gradients, Mode, Module, Optimizer};
use std::io::Write;
use std::time::Instant;

/// The benchmarked cells, in table order.
pub const METHODS: [&str; 8] = [
    "forward",
    "gradient",
    "lrp-epsilon-plus",
    "lrp-epsilon-alpha2-beta1",
    "lrp-epsilon-gamma-box",
    "sglrp",
    "clrp2",
    "train-step",
];

fn bdt() -> Composite {
    Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0))
}

/// Runs one cell once.
fn run_once(method: &str, model: &mut dyn Module, x: &Tensor, opt: &mut Adam) -> Result<()> {
    let t = Targets::Argmax;
    let lrp = |c: Composite| Method::Lrp {
        composite: c,
        seed: Seed::OneHot,
    };
    let m = match method {
        // What `relprop predict` does with the batch (photos one per thread).
        "forward" => return predict(model, x, super::predict::predict_chunk(x)).map(|_| ()),
        "train-step" => {
            let mut tape = Tape::new();
            let id = tape.constant(x.clone());
            let logits = model.forward(&mut tape, id, Mode::Train)?;
            let classes = tape.value(logits)?.shape()[1].max(1);
            let labels = (0..x.shape()[0]).map(|i| i % classes).collect();
            let loss = Labels::Classes(labels).loss(&mut tape, logits)?;
            let grads = Gradients::from_tape(&tape, &tape.grad(loss)?)?;
            model.update_running_stats(&tape)?;
            return opt.step(model.params_mut(), &grads);
        }
        "gradient" => Method::Gradient,
        "lrp-epsilon-plus" => lrp(Composite::epsilon_plus(1e-6)),
        "lrp-epsilon-alpha2-beta1" => lrp(Composite::epsilon_alpha2_beta1(1e-6)),
        "lrp-epsilon-gamma-box" => lrp(Composite::epsilon_gamma_box(
            Tensor::scalar(0.0),
            Tensor::scalar(1.0),
            1e-6,
        )),
        "sglrp" => Method::Sglrp { composite: bdt() },
        "clrp2" => Method::Clrp2 { composite: bdt() },
        other => {
            return Err(relprop::core::Error::invalid(
                "bench",
                format!("unknown method {other}"),
            ))
        }
    };
    explain(model, x, &t, &m).map(|_| ())
}

/// Median milliseconds of `f`, over at least `min_runs` runs and `min_seconds` of time.
fn median_ms(min_runs: usize, min_seconds: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up: first-touch allocations, lazy decoding
    let (start, mut times) = (Instant::now(), Vec::new());
    while times.len() < min_runs
        || (start.elapsed().as_secs_f64() < min_seconds && times.len() < 1000)
    {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Prints the table (Markdown) and, with `csv`, writes `model,method,batch,ms,per_second` rows.
pub fn run(
    models: &[String],
    batches: &[usize],
    methods: &[String],
    min_seconds: f64,
    csv: Option<&std::path::Path>,
) -> CliResult {
    for m in methods {
        if !METHODS.contains(&m.as_str()) {
            return Err(CliError::input(format!(
                "unknown benchmark method '{m}' (expected: {})",
                METHODS.join(", ")
            )));
        }
    }
    for &n in batches {
        check_count("--batch-sizes", n, MAX_BATCH)?;
    }
    if !(0.0..=MAX_MIN_SECONDS).contains(&min_seconds) {
        return Err(CliError::input(format!(
            "--min-seconds must be between 0 and {MAX_MIN_SECONDS}, got {min_seconds}"
        )));
    }
    let mut rows = Vec::new();
    outln!(
        "threads: {} (RAYON_NUM_THREADS to change)",
        rayon::current_num_threads()
    );
    outln!("| model | method | batch | ms per batch (median) | explanations/s |");
    outln!("|---|---|---:|---:|---:|");
    for name in models {
        let mut model = load_any(name, None)?;
        let shape = model.input_shape().ok_or_else(|| {
            CliError::input(format!("{name}: the model does not fix its input size"))
        })?;
        let name = model.name().to_string();
        for &n in batches {
            let mut dims = vec![n];
            dims.extend(&shape);
            let x = Tensor::rand_uniform(&dims, 0.0, 1.0, n as u64);
            for method in methods {
                let mut opt = Adam::new(1e-6);
                let min_runs = if n >= 256 { 5 } else { 10 };
                let ms = median_ms(min_runs, min_seconds, || {
                    run_once(method, model.module_mut(), &x, &mut opt)
                })?;
                let per_second = n as f64 / (ms / 1e3);
                outln!("| {name} | {method} | {n} | {ms:.2} | {per_second:.0} |");
                let _ = std::io::stdout().flush();
                rows.push(format!("{name},{method},{n},{ms:.4},{per_second:.2}"));
            }
        }
    }
    if let Some(path) = csv {
        let text = format!("model,method,batch,ms,per_second\n{}\n", rows.join("\n"));
        std::fs::write(path, text)
            .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}
