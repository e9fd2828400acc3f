//! `relprop graph`: the recorded graph as Graphviz DOT (or SVG through Graphviz's `dot`),
//! each node with its op, shape, rule and, given an input, the relevance that reached it.

use super::error::{CliError, CliResult};
use super::input::read_input;
use super::models::load_any;
use clap::Args;
use relprop::core::Tensor;
use relprop::explain::{graph_dot, Seed, Targets};
use relprop::nn::io::{check_outputs, write_all_atomic};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Everything `relprop graph` accepts.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// A zoo model's name, or the path of an .onnx file.
    #[arg(long)]
    pub model: String,
    /// Weights of a zoo model: a .safetensors file with PyTorch names or a relprop checkpoint.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Rule set: zero, epsilon, epsilon-plus, epsilon-plus-flat, epsilon-alpha2-beta1,
    /// epsilon-alpha2-beta1-flat, epsilon-gamma-box, bounded-deep-taylor.
    #[arg(long, default_value = "epsilon-plus")]
    pub rules: String,
    /// Explain this input (its first sample) and show each node's relevance sum; without
    /// it, the graph is recorded on zeros and shows ops, shapes and rules only.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Explained class (default: the predicted class).
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
    /// Output: FILE.dot, or FILE.svg (drawn by Graphviz's `dot`, which must be installed).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the graph.
pub fn run(args: &GraphArgs) -> CliResult {
    let ext = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let svg = match ext.as_deref() {
        Some("dot") | Some("gv") => false,
        Some("svg") => true,
        _ => {
            return Err(CliError::input(
                "--out must end in .dot (Graphviz text) or .svg",
            ))
        }
    };
    let inputs: Vec<&std::path::Path> = args.input.iter().map(PathBuf::as_path).collect();
    check_outputs(&[args.out.as_path()], &inputs)?;
    let composite = super::explain::composite(&args.rules, args.epsilon, args.low, args.high)?;
    let model = load_any(&args.model, args.weights.as_deref())?;
    let (x, walk) = match &args.input {
        Some(path) => {
            let batch = read_input(path, &model)?.batch;
            let x = batch.batch_range(0, 1)?;
            let targets = args.target.map_or(Targets::Argmax, Targets::Class);
            (x, Some((targets, Seed::OneHot)))
        }
        None => {
            let shape = model.input_shape().ok_or_else(|| {
                CliError::input(format!(
                    "{}: the input's size is not fixed in the file: give --input",
                    model.name()
                ))
            })?;
            let mut one = vec![1];
            one.extend(shape);
            (Tensor::zeros(&one), None)
        }
    };
    let dot = graph_dot(model.module(), &x, &composite, walk.as_ref())?;
    let bytes = if svg {
        render_svg(&dot)?
    } else {
        dot.into_bytes()
    };
    outln!("writing {}", args.out.display());
    write_all_atomic(&[(args.out.as_path(), bytes.as_slice())])?;
    Ok(())
}

/// Runs Graphviz's `dot -Tsvg` on `dot`.
fn render_svg(dot: &str) -> CliResult<Vec<u8>> {
    let missing = |e: std::io::Error| {
        CliError::input(format!(
            "--out .svg needs Graphviz's `dot` program ({e}); write .dot instead, or install Graphviz"
        ))
    };
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes()).map_err(missing)?;
    }
    let out = child.wait_with_output().map_err(missing)?;
    if !out.status.success() {
        return Err(CliError::internal(format!(
            "Graphviz failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}
