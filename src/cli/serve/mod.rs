//! `relprop serve`: a local web explainer. One page (HTML, CSS and JavaScript embedded in
//! the binary) and a JSON API over the same code paths as `relprop explain` and
//! `relprop predict`.
//!
//! Requests are parsed and explained on a fixed set of worker threads fed by a bounded
//! queue. At most [`server::MAX_IN_FLIGHT`] requests are handled at once (bodies read,
//! queued or computing); a burst beyond that waits on its connections, unread, so memory
//! stays bounded. The queue is longer than that, so its 503 answer when full is a backstop.

mod api;
mod inputs;
mod models;
mod page;
mod server;
mod workers;

use super::error::{CliError, CliResult};
use clap::Args;
use std::net::IpAddr;

/// Everything `relprop serve` accepts.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on. Anything but a loopback address lets other machines in.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Models to serve: zoo names or .onnx paths, repeated or comma-separated (default:
    /// every zoo model whose weights are present).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Requests computed at once (1 to 16; default: the number of cores, at most 4).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Requests waiting for a worker at most; more are answered 503 at once (a backstop: the
/// server handles fewer requests at a time than this).
pub const QUEUE_CAPACITY: usize = 64;
/// The most workers `--workers` accepts.
const MAX_WORKERS: usize = 16;

/// Loads the models, binds the address, prints it and serves until Ctrl-C (or SIGTERM).
pub fn run(args: &ServeArgs) -> CliResult {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.workers.unwrap_or(cores.min(4));
    super::limits::check_count("--workers", workers, MAX_WORKERS)?;
    let models = models::load_all(&args.model)?;
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    outln!("models: {}", names.join(", "));
    let pool = super::pool::build().map(std::sync::Arc::new);
    let workers = workers::Workers::start(workers, QUEUE_CAPACITY, pool)
        .map_err(|e| CliError::internal(format!("cannot start worker threads: {e}")))?;
    server::serve(args.host, args.port, api::AppState { models, workers })
}
