//! Mutation tests for every loader a user can reach: relprop checkpoints, safetensors, npy,
//! PNG input images, the zoo's digit-sheet decoder, ONNX models and PyTorch `.pth` files,
//! directly and (all but ONNX) through the CLI.
//!
//! The io module's own tests (nn/src/io/tests) cover every single truncation and flipped
//! byte of small npy, safetensors and checkpoint files; this file adds what they do not:
//! random multi-byte mutations of realistic files (with checksums repaired so the damage
//! reaches the decoders), PNGs of every colour type and bit depth, the digit sheet, hostile
//! declared sizes checked against a counting allocator and a clock, NaN payloads, and the
//! `relprop` binary on damaged files (exit code 2, never a panic).
//!
//! Memory is measured per thread by the counting global allocator below; a single request
//! above 4 GiB is refused, which aborts the test binary loudly instead of swapping.
//!
//! `fuzz_loaders_for_a_long_time` (ignored) is the stable-toolchain fuzz driver: run it with
//! `RELPROP_FUZZ_ITERS=1000000 cargo test --release --test loader_mutation -- --ignored
//! fuzz_loaders --nocapture` (see docs/FUZZING.md).

#[path = "../common/mod.rs"]
mod common;

mod alloc;
mod cli;
mod direct;
mod files;
mod fuzz_driver;
mod loaders;
mod mutate;
mod onnx;
