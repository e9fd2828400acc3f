//! Helpers shared by the integration tests that run the `relprop` binary.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `relprop` binary built for these tests.
pub fn relprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relprop"))
        .args(args)
        .output()
        .expect("run relprop")
}

/// A fresh folder under the system's temporary directory, unique to this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relprop-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The reference fixture of a zoo model.
pub fn fixture_path(model: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/tests/fixtures/zennit/{model}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    ))
}
