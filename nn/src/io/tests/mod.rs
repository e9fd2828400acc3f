//! Tests of the io module: round trips, hand-made fixtures in the documented formats,
//! and corruption suites (every prefix, every flipped byte, hostile sizes).

mod checkpoint;
mod npy;
mod pth;
mod safetensors;

use super::{write_atomic, Array, IoError};
use relprop_core::Tensor;
use std::path::PathBuf;

/// A fresh scratch directory for one test; removed by [`Scratch`]'s `Drop`.
pub(super) struct Scratch(pub PathBuf);

impl Scratch {
    pub(super) fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("relprop-io-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// File names in the directory, sorted (to check no temporary file is left behind).
    pub(super) fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Values that catch lossy round trips: signed zero, subnormals, extremes, a NaN payload.
pub(super) fn awkward_f32() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        f32::MIN_POSITIVE,
        f32::from_bits(1), // smallest subnormal
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        std::f32::consts::PI,
        1e-30,
        -7.25e12,
    ]
}

pub(super) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

pub(super) fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, seed)
}

#[test]
fn write_atomic_creates_replaces_and_leaves_no_temporary_file() {
    let dir = Scratch::new("atomic");
    let p = dir.path("out.bin");
    write_atomic(&p, b"first").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"first");
    write_atomic(&p, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second, longer");
    assert_eq!(dir.listing(), vec!["out.bin".to_string()]);
}

#[test]
fn write_atomic_reports_os_errors_with_the_path() {
    let dir = Scratch::new("atomic-err");
    let p = dir.path("missing-dir").join("out.bin");
    match write_atomic(&p, b"x") {
        Err(IoError::Io { path, kind, .. }) => {
            assert_eq!(path, p);
            assert_eq!(kind, std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(write_atomic(std::path::Path::new("/"), b"x").is_err());
    assert!(dir.listing().is_empty());
}

#[test]
fn array_accessors_and_tensor_conversion() {
    let a = Array::F64 {
        shape: vec![2],
        data: vec![0.1, -2.0],
    };
    assert_eq!(a.shape(), &[2]);
    assert_eq!((a.dtype(), a.numel()), ("f64", 2));
    assert!(a.as_f32().is_none() && a.as_f64().is_some());
    let t = a.into_tensor().unwrap();
    assert_eq!(t.data(), &[0.1f64 as f32, -2.0]);

    let labels = Array::I64 {
        shape: vec![3],
        data: vec![1, 2, 3],
    };
    assert_eq!(labels.as_i64(), Some(&[1i64, 2, 3][..]));
    assert!(matches!(
        labels.into_tensor(),
        Err(IoError::UnsupportedDtype { dtype, .. }) if dtype == "i64"
    ));
}

#[test]
fn error_messages_read_as_sentences() {
    let e = IoError::WrongShape {
        name: "classifier.fc1.weight".into(),
        expected: vec![128, 784],
        found: vec![256, 784],
    };
    assert_eq!(
        e.to_string(),
        "checkpoint: parameter classifier.fc1.weight has shape [256, 784] but the model \
         expects [128, 784]"
    );
    let e = IoError::truncated("npy data", 96, 40);
    assert_eq!(
        e.to_string(),
        "npy data: file is truncated: 96 bytes are needed but only 40 remain"
    );
    let e = IoError::WrongArchitecture {
        expected: "lenet5".into(),
        found: "mlp".into(),
    };
    assert!(e.to_string().contains("`mlp`") && e.to_string().contains("`lenet5`"));
    let e: Box<dyn std::error::Error> = Box::new(IoError::NonFinite { name: "w".into() });
    assert!(e.to_string().contains("NaN"));
}
