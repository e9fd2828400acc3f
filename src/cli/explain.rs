//! `relprop explain`: one attribution method on a zoo model, to `.npy`, PNG and an audit.

use super::error::{CliError, CliResult};
use super::input::{read_targets, ModelInput};
use super::limits::{check_count, MAX_STEPS, MAX_WINDOW};
use super::models::AnyModel;
use clap::Args;
use relprop::core::Tensor;
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::{explain, Attribution, Composite, Method, Seed, Targets, COMPOSITE_NAMES};
use relprop::nn::io::{check_outputs, npy_f32_bytes, write_all_atomic};
use std::io::Write;
use std::path::PathBuf;

/// The accepted `--method` names.
pub const METHODS: [&str; 11] = [
    "gradient",
    "gradient-x-input",
    "smoothgrad",
    "integrated-gradients",
    "grad-cam",
    "occlusion",
    "lrp",
    "sglrp",
    "sglrp-two-pass",
    "clrp1",
    "clrp2",
];

/// Everything `relprop explain` accepts.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model, weights and input.
    #[command(flatten)]
    pub source: ModelInput,
    /// Explain this class for every sample (default: the predicted class).
    #[arg(long, conflicts_with = "targets")]
    pub target: Option<usize>,
    /// Int64 .npy with one class per sample.
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// gradient, gradient-x-input, smoothgrad, integrated-gradients, grad-cam, occlusion,
    /// lrp, sglrp, sglrp-two-pass, clrp1, clrp2.
    #[arg(long)]
    pub method: String,
    /// Rule set for lrp/sglrp/clrp: zero, epsilon, epsilon-plus, epsilon-plus-flat,
    /// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat, epsilon-gamma-box, bounded-deep-taylor
    /// (default: epsilon-plus for lrp, bounded-deep-taylor otherwise).
    #[arg(long)]
    pub rules: Option<String>,
    /// Epsilon of the Epsilon rule (finite, >= 0).
    // Hyphen values parse, so `-1` or `-inf` reach the check in `composite` with a
    // message about the option instead of being taken for a flag.
    #[arg(long, default_value_t = DEFAULT_EPSILON, allow_hyphen_values = true)]
    pub epsilon: f32,
    /// Lowest input value (ZBox).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub low: f32,
    /// Highest input value (ZBox).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub high: f32,
    /// Float32 .npy of the input relevance, in the input's shape.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// PNG grid: each input next to its heatmap.
    #[arg(long)]
    pub heatmap: Option<PathBuf>,
    /// Colour map of the heatmap: bwr, seismic, coldnhot, gray.
    #[arg(long, default_value = "bwr")]
    pub cmap: String,
    /// Print the per-layer relevance audit.
    #[arg(long)]
    pub audit: bool,
    /// SmoothGrad samples or integrated-gradients steps (1 to 100000).
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// SmoothGrad noise level, relative to the input's range.
    #[arg(long, default_value_t = DEFAULT_NOISE)]
    pub noise: f32,
    /// Write the map at this labelled layer instead of the input (`relprop info` lists the
    /// labels); for grad-cam, the conv layer to use (default: the last one).
    #[arg(long)]
    pub layer: Option<String>,
    /// Explain one unit (or channel) of a labelled layer instead of a logit: LABEL:INDEX
    /// (gradient, gradient-x-input and lrp).
    #[arg(long, conflicts_with_all = ["target", "targets"])]
    pub neuron: Option<String>,
    /// Occlusion window side (1 to the image side, at most 4096).
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    pub window: usize,
    /// Occlusion stride (1 to the window side).
    #[arg(long, default_value_t = DEFAULT_STRIDE)]
    pub stride: usize,
    /// Random seed (SmoothGrad noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The rule set named `rules`, after checking the options every LRP command shares.
pub fn composite(rules: &str, epsilon: f32, low: f32, high: f32) -> CliResult<Composite> {
    if !COMPOSITE_NAMES.contains(&rules) {
        return Err(CliError::input(format!(
            "unknown rule set '{rules}' (expected one of: {})",
            COMPOSITE_NAMES.join(", ")
        )));
    }
    if !epsilon.is_finite() || epsilon < 0.0 {
        return Err(CliError::input(format!(
            "--epsilon must be a finite number >= 0, got {epsilon}"
        )));
    }
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(CliError::input(format!(
            "--low and --high must be finite with low <= high, got {low} and {high}"
        )));
    }
    Ok(Composite::by_name(rules, epsilon, low, high)?)
}

/// Default of `--epsilon`.
pub const DEFAULT_EPSILON: f32 = 1e-6;
/// Default of `--steps`.
pub const DEFAULT_STEPS: usize = 32;
/// Default of `--noise`.
pub const DEFAULT_NOISE: f32 = 0.1;
/// Default of `--window`.
pub const DEFAULT_WINDOW: usize = 4;
/// Default of `--stride`.
pub const DEFAULT_STRIDE: usize = 2;

/// A method's options besides its name and rule set. The default is the command line's,
/// so `relprop serve` explains as `relprop explain` does without options.
#[derive(Clone, Debug)]
pub struct MethodOptions {
    /// Epsilon of the Epsilon rule.
    pub epsilon: f32,
    /// Lowest input value (ZBox).
    pub low: f32,
    /// Highest input value (ZBox).
    pub high: f32,
    /// SmoothGrad samples or integrated-gradients steps.
    pub steps: usize,
    /// SmoothGrad noise level.
    pub noise: f32,
    /// Grad-CAM's layer (default: the last conv layer).
    pub layer: Option<String>,
    /// Occlusion window side.
    pub window: usize,
    /// Occlusion stride.
    pub stride: usize,
    /// SmoothGrad seed.
    pub seed: u64,
}

impl Default for MethodOptions {
    fn default() -> Self {
        MethodOptions {
            epsilon: DEFAULT_EPSILON,
            low: 0.0,
            high: 1.0,
            steps: DEFAULT_STEPS,
            noise: DEFAULT_NOISE,
            layer: None,
            window: DEFAULT_WINDOW,
            stride: DEFAULT_STRIDE,
            seed: 0,
        }
    }
}

/// Whether `name` is a method of the LRP family (it takes a rule set).
pub fn is_lrp_like(name: &str) -> bool {
    matches!(name, "lrp" | "sglrp" | "sglrp-two-pass" | "clrp1" | "clrp2")
}

/// The rule set a method uses unless told: epsilon-plus for lrp, bounded-deep-taylor for the
/// contrastive methods.
pub fn default_rules(name: &str) -> &'static str {
    if name == "lrp" {
        "epsilon-plus"
    } else {
        "bounded-deep-taylor"
    }
}

/// Builds the method from the command line's arguments.
pub fn method(args: &ExplainArgs) -> CliResult<Method> {
    if args.rules.is_some() && !is_lrp_like(&args.method) && METHODS.contains(&args.method.as_str())
    {
        // A note only: a closed stderr must not stop the command.
        let _ = writeln!(
            std::io::stderr(),
            "note: --rules applies to lrp, sglrp, sglrp-two-pass, clrp1 and clrp2; {} ignores it",
            args.method
        );
    }
    let options = MethodOptions {
        epsilon: args.epsilon,
        low: args.low,
        high: args.high,
        steps: args.steps,
        noise: args.noise,
        layer: args.layer.clone(),
        window: args.window,
        stride: args.stride,
        seed: args.seed,
    };
    method_named(&args.method, args.rules.as_deref(), &options)
}

/// Builds the method `name` with rule set `rules` (default: [`default_rules`]) and
/// `options`: what `relprop explain` and `relprop serve` both run.
pub fn method_named(name: &str, rules: Option<&str>, options: &MethodOptions) -> CliResult<Method> {
    let o = options;
    let composite = composite(
        rules.unwrap_or(default_rules(name)),
        o.epsilon,
        o.low,
        o.high,
    )?;
    match name {
        "smoothgrad" | "integrated-gradients" => check_count("--steps", o.steps, MAX_STEPS)?,
        "occlusion" => {
            check_count("--window", o.window, MAX_WINDOW)?;
            check_count("--stride", o.stride, o.window)?;
        }
        _ => {}
    }
    Ok(match name {
        "gradient" => Method::Gradient,
        "gradient-x-input" => Method::GradientXInput,
        "smoothgrad" => Method::SmoothGrad {
            samples: o.steps,
            noise: o.noise,
            seed: o.seed,
        },
        "integrated-gradients" => Method::IntegratedGradients {
            steps: o.steps,
            baseline: 0.0,
        },
        "grad-cam" => Method::GradCam {
            layer: o.layer.clone(),
        },
        "occlusion" => Method::Occlusion {
            window: o.window,
            stride: o.stride,
        },
        "lrp" => Method::Lrp {
            composite,
            seed: Seed::OneHot,
        },
        "sglrp" => Method::Sglrp { composite },
        "sglrp-two-pass" => Method::SglrpTwoPass {
            composite,
            positive_only: false,
        },
        "clrp1" => Method::Clrp1 { composite },
        "clrp2" => Method::Clrp2 { composite },
        other => {
            return Err(CliError::input(format!(
                "unknown method '{other}' (expected one of: {})",
                METHODS.join(", ")
            )))
        }
    })
}

/// Explains `batch` (`[N, C, H, W]`) with `method`: the input map, logits, targets and
/// audit that `relprop explain` prints and writes and `relprop serve` answers with.
pub fn attribute(
    model: &AnyModel,
    batch: &Tensor,
    targets: &Targets,
    method: &Method,
) -> CliResult<Attribution> {
    Ok(explain(model.module(), batch, targets, method)?)
}

/// Runs the command. Files are written only once everything has been computed, and a
/// failure while writing removes what was already written: no partial output remains.
pub fn run(args: &ExplainArgs) -> CliResult {
    let method = method(args)?;
    // Outputs are checked before any work: writable, and none is an input or the other.
    let outputs: Vec<&std::path::Path> = args
        .out
        .iter()
        .chain(&args.heatmap)
        .map(|p| p.as_path())
        .collect();
    let inputs: Vec<&std::path::Path> = std::iter::once(args.source.input.as_path())
        .chain(args.targets.as_deref())
        .collect();
    check_outputs(&outputs, &inputs)?;
    let cmap = ColorMap::from_name(&args.cmap).ok_or_else(|| {
        CliError::input(format!(
            "unknown colour map '{}' (bwr, seismic, coldnhot, gray)",
            args.cmap
        ))
    })?;
    let (input, model) = args.source.load()?;
    let n = input.batch.shape()[0];
    let targets = match (args.target, &args.targets) {
        (Some(_), Some(_)) => {
            return Err(CliError::input(
                "give either --target or --targets, not both",
            ))
        }
        (Some(t), None) => Targets::Class(t),
        (None, Some(path)) => Targets::PerSample(read_targets(path, n)?),
        (None, None) => Targets::Argmax,
    };
    let at_layer = args.layer.as_ref().filter(|_| args.method != "grad-cam");
    if at_layer.is_some() || args.neuron.is_some() {
        let (map, heatmap) = super::explain_layers::run(args, &method, &model, &input, &targets)?;
        let grid = heatmap.map(|r| heatmap_grid(&input.batch, &r, cmap, &args.method, None));
        return write_outputs(args, &map, grid);
    }
    let a = attribute(&model, &input.batch, &targets, &method)?;
    let relevance = a.relevance.reshape(&input.shape)?;

    let predicted = a.logits.argmax(1)?;
    for (i, (t, p)) in a.targets.iter().zip(&predicted).enumerate().take(16) {
        outln!(
            "sample {i}: explained class {t} (predicted {p}), relevance sum {:+.4}",
            sample_sum(&a.relevance, i, n)
        );
    }
    if n > 16 {
        outln!("... {} more samples", n - 16);
    }
    if args.audit {
        out!("{}", a.audit);
    }
    write_outputs(
        args,
        &relevance,
        Some(heatmap_grid(
            &input.batch,
            &a.relevance,
            cmap,
            &args.method,
            Some((&a.targets, &a.audit.seed_abs)),
        )),
    )
}

/// Writes `--out` and `--heatmap` (when asked for and drawn), all or nothing: a failure
/// replaces no file.
fn write_outputs(
    args: &ExplainArgs,
    relevance: &relprop::core::Tensor,
    grid: Option<Grid>,
) -> CliResult {
    if args.heatmap.is_some() && grid.is_none() {
        return Err(CliError::input(
            "--heatmap draws input maps: write a layer's map with --out",
        ));
    }
    // Both files are rendered first, announced (a closed stdout then fails before any
    // file is touched), then written all or nothing.
    let mut files: Vec<(&std::path::Path, Vec<u8>)> = Vec::new();
    if let Some(out) = &args.out {
        files.push((out, npy_f32_bytes(relevance.shape(), relevance.data())?));
    }
    if let (Some(png), Some(grid)) = (&args.heatmap, grid) {
        let bytes = grid
            .to_png()
            .map_err(|e| CliError::input(format!("{}: {e}", png.display())))?;
        files.push((png, bytes));
    }
    for (path, _) in &files {
        outln!("writing {}", path.display());
    }
    let refs: Vec<(&std::path::Path, &[u8])> =
        files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&refs)?;
    Ok(())
}

pub(crate) fn sample_sum(r: &relprop::core::Tensor, i: usize, n: usize) -> f32 {
    let per = r.numel() / n.max(1);
    r.data()[i * per..(i + 1) * per].iter().sum()
}

/// A grid with one row per sample (at most 16): the input, then its heatmap, with titles
/// and a legend. `explained`: each sample's target and seed size (`sum |seed|`), when
/// known (either may be empty); a map from a near-zero seed (a saturated softmax) is drawn
/// faint.
fn heatmap_grid(
    x: &relprop::core::Tensor,
    r: &relprop::core::Tensor,
    cmap: ColorMap,
    method: &str,
    explained: Option<(&[usize], &[f64])>,
) -> Grid {
    let (n, h, w) = (x.shape()[0], x.shape()[2], x.shape()[3]);
    let per = x.numel() / n.max(1);
    let mut grid = Grid::new(4 * h.max(w).min(64), 4);
    grid.column_titles(["input", method]);
    for i in 0..n.min(16) {
        // Channels are summed into one map per pixel.
        let mut map = vec![0.0f32; h * w];
        let mut grey = vec![0.0f32; h * w];
        for (k, (&rv, &xv)) in r.data()[i * per..(i + 1) * per]
            .iter()
            .zip(&x.data()[i * per..(i + 1) * per])
            .enumerate()
        {
            map[k % (h * w)] += rv;
            grey[k % (h * w)] += xv / (per / (h * w)) as f32;
        }
        let (title, seed_abs) = match explained {
            // Methods without a seed (occlusion, Grad-CAM, ...) audit none: drawn as usual.
            Some((t, s)) => (
                t.get(i)
                    .map_or(format!("sample {i}"), |t| format!("{i}: class {t}")),
                s.get(i).copied().unwrap_or(f64::INFINITY),
            ),
            None => (format!("sample {i}"), f64::INFINITY),
        };
        grid.add_titled_row(
            title,
            vec![
                Cell::Input(grey, h, w),
                Cell::relevance(map, h, w, cmap, seed_abs),
            ],
        );
    }
    grid.legend(cmap, ["red: for the class, blue: against"]);
    grid
}
