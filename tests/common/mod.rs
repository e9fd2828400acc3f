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

/// `max |ours - ref| / max |ref|`: the fixtures' error measure.
pub fn rel_error(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
    diff / scale.max(1e-30)
}

/// The array called `name` in a fixture's arrays, as f64 (float32 or float64 stored).
pub fn fixture_f64(arrays: &[(String, relprop::nn::io::Array)], name: &str) -> Vec<f64> {
    use relprop::nn::io::Array;
    match &arrays
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
    {
        Array::F64 { data, .. } => data.clone(),
        Array::F32 { data, .. } => data.iter().map(|&v| v as f64).collect(),
        other => panic!("{name} is {}", other.dtype()),
    }
}

/// Runs the `relprop` binary in folder `dir`.
pub fn relprop_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relprop"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run relprop")
}

/// Runs the `relprop` binary in folder `dir`, killing it after `limit`: `None` when it had
/// not ended by then.
pub fn relprop_in_within(
    dir: &std::path::Path,
    args: &[&str],
    limit: std::time::Duration,
) -> Option<Output> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_relprop"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run relprop");
    // Drain both pipes on threads so a chatty command never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).ok();
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for relprop") {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Some(Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    })
}
