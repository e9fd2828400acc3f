//! The loaders under test, and running one on bytes with limits on time and memory.

use crate::alloc::*;
use crate::files::*;
use relprop::explain::heatmap::{read_png_grey, MAX_PNG_SIDE};
use relprop::nn::io::{parse_npy, parse_pth, parse_safetensors, Checkpoint};
use relprop::onnx::decode_model;
use relprop::zoo::digits;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

pub(crate) static DIGIT_SHEET: &[u8] = include_bytes!("../../zoo/data/digits.png");
pub(crate) static DIGIT_MANIFEST: &str = include_str!("../../zoo/data/digits.txt");

/// The ONNX reader's memory per input byte, at worst: the decoded messages it allows
/// (refusing files that would exceed them), twice over for vectors' spare capacity.
pub(crate) const ONNX_BYTES_PER_BYTE: usize = 2 * relprop::onnx::DECODED_BYTES_PER_BYTE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loader {
    Checkpoint,
    Safetensors,
    Npy,
    Png,
    Digits,
    Onnx,
    Pth,
}

pub(crate) const LOADERS: [Loader; 7] = [
    Loader::Checkpoint,
    Loader::Safetensors,
    Loader::Npy,
    Loader::Png,
    Loader::Digits,
    Loader::Onnx,
    Loader::Pth,
];

impl Loader {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Loader::Checkpoint => "checkpoint",
            Loader::Safetensors => "safetensors",
            Loader::Npy => "npy",
            Loader::Png => "png",
            Loader::Digits => "digits",
            Loader::Onnx => "onnx",
            Loader::Pth => "pth",
        }
    }

    /// Parses `bytes`; `Err` carries the message.
    pub(crate) fn run(self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Loader::Checkpoint => Checkpoint::from_bytes(bytes)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Loader::Safetensors => parse_safetensors(bytes)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Loader::Npy => parse_npy(bytes).map(|_| ()).map_err(|e| e.to_string()),
            Loader::Png => read_png_grey(bytes).map(|_| ()).map_err(|e| e.to_string()),
            Loader::Digits => digits::decode(bytes, DIGIT_MANIFEST)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            // No folder: external data is refused, so only the file's own bytes are read.
            Loader::Onnx => decode_model(bytes, None)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Loader::Pth => parse_pth(bytes).map(|_| ()).map_err(|e| e.to_string()),
        }
    }

    /// The most memory one call may take for an input of `len` bytes. The array formats
    /// are bounded by their size; a PNG by its decoded size, which compression lets exceed
    /// the file's many times over, so by the documented side limit (8 bytes per pixel for
    /// 16-bit RGBA); the digit sheet by the bundled manifest's sheet and tiles.
    pub(crate) fn memory_bound(self, len: usize) -> usize {
        let side = MAX_PNG_SIDE as usize;
        match self {
            // Checkpoints: serde's 1 MiB cautious pre-allocation per declared sequence.
            Loader::Checkpoint | Loader::Safetensors | Loader::Npy => 16 * len + (2 << 20),
            Loader::Png => side * side * 8 + 16 * len + (1 << 20),
            Loader::Digits => 3 * 2800 * 2800 + (64 << 20),
            Loader::Onnx => ONNX_BYTES_PER_BYTE * len + (4 << 20),
            // The unpickler's objects (bounded per input byte), a zip's inflated members
            // (at most 8 times the input) and the copied tensors (at most twice).
            Loader::Pth => 64 * len + (4 << 20),
        }
    }

    /// Repairs the checksums a mutation broke, so the damage reaches the decoder.
    pub(crate) fn repair(self, bytes: &mut [u8]) {
        match self {
            Loader::Checkpoint => refresh_checkpoint_crc(bytes),
            Loader::Png | Loader::Digits => refresh_png_crcs(bytes),
            _ => {}
        }
    }
}

/// Runs one loader call under `catch_unwind`, with its cost; panics are reported as `Err`
/// of the outer result with the panic message.
pub(crate) fn run_checked(
    loader: Loader,
    bytes: &[u8],
) -> (Result<Result<(), String>, String>, Usage) {
    measure(|| {
        catch_unwind(AssertUnwindSafe(|| loader.run(bytes))).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into())
        })
    })
}

/// Asserts the loader neither panicked, nor took more memory or time than allowed.
pub(crate) fn check(
    loader: Loader,
    bytes: &[u8],
    what: &str,
    max_time: Duration,
) -> Result<(), String> {
    let (result, usage) = run_checked(loader, bytes);
    let outcome = match result {
        Ok(r) => r,
        Err(panic) => panic!(
            "{} panicked on {what} ({} bytes): {panic}",
            loader.name(),
            bytes.len()
        ),
    };
    assert!(
        usage.peak <= loader.memory_bound(bytes.len()),
        "{} took {} bytes (largest request {}) on {what} ({} bytes; bound {})",
        loader.name(),
        usage.peak,
        usage.largest,
        bytes.len(),
        loader.memory_bound(bytes.len())
    );
    assert!(
        usage.elapsed <= max_time,
        "{} took {:?} on {what} ({} bytes)",
        loader.name(),
        usage.elapsed,
        bytes.len()
    );
    outcome
}
