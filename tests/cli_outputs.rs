//! One output path for every command: devices are written through, FIFOs and read-only
//! files refused, links followed, permissions kept, long names fine, outputs that are
//! inputs or each other refused, and a failed run replaces nothing.

mod common;

use common::{relprop, scratch};
use relprop::core::Tensor;
use relprop::nn::io::{read_tensor, write_npy_f32};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

fn explain(x: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "explain",
        "--model",
        "lenet5",
        "--method",
        "lrp",
        "--input",
        x.to_str().unwrap(),
    ];
    args.extend(extra);
    relprop(&args)
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn targets_are_written_as_what_they_are() {
    let dir = scratch("outputs-kinds");
    let x = dir.join("x.npy");
    write_npy_f32(&x, &Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 1)).unwrap();
    // A character device is written through and stays a device.
    let o = explain(&x, &["--out", "/dev/null"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A FIFO is refused at once (no reader would ever come), and stays.
    let fifo = dir.join("fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let o = explain(&x, &["--out", fifo.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        assert!(err(&o).contains("FIFO"), "{}", err(&o));
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
    // A read-only file is refused, not replaced.
    let ro = dir.join("ro.npy");
    std::fs::write(&ro, b"keep me").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let o = explain(&x, &["--out", ro.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert_eq!(std::fs::read(&ro).unwrap(), b"keep me");
    // A link is followed; the file's permissions are kept.
    let real = dir.join("real.npy");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join("link.npy");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = explain(&x, &["--out", link.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read_tensor(&real).unwrap().shape(), &[1, 1, 28, 28]);
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A legal 250-byte name works (its temporary name stays within the limit).
    let long = dir.join(format!("{}.npy", "a".repeat(246)));
    let o = explain(&x, &["--out", long.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(long.exists());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_run_replaces_nothing_and_outputs_are_not_inputs() {
    let dir = scratch("outputs-fail");
    let x = dir.join("x.npy");
    write_npy_f32(&x, &Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 1)).unwrap();
    let before = std::fs::read(&x).unwrap();
    let existing = dir.join("r.npy");
    std::fs::write(&existing, b"previous result").unwrap();
    let missing = dir.join("missing").join("h.png");
    // Other names of the input: a hard link, a symbolic link, a path through `.`.
    let (hard, soft) = (dir.join("hard.npy"), dir.join("soft.npy"));
    std::fs::hard_link(&x, &hard).unwrap();
    std::os::unix::fs::symlink(&x, &soft).unwrap();
    let dotted = dir.join(".").join("x.npy");
    let mut cases: Vec<Vec<String>> = [&hard, &soft, &dotted]
        .iter()
        .map(|p| vec!["--out".into(), p.to_str().unwrap().into()])
        .collect();
    cases.extend(vec![
        // The heatmap's folder is missing: the existing --out must survive.
        vec![
            "--out".into(),
            existing.to_str().unwrap().into(),
            "--heatmap".into(),
            missing.to_str().unwrap().into(),
        ],
        // The output is the input.
        vec!["--out".into(), x.to_str().unwrap().into()],
        // Two outputs name one file.
        vec![
            "--out".into(),
            existing.to_str().unwrap().into(),
            "--heatmap".into(),
            existing.to_str().unwrap().into(),
        ],
    ]);
    for case in cases {
        let extra: Vec<&str> = case.iter().map(String::as_str).collect();
        let o = explain(&x, &extra);
        assert_eq!(o.status.code(), Some(2), "{case:?}: {}", err(&o));
        assert!(err(&o).starts_with("error: "), "{case:?}");
        assert_eq!(
            std::fs::read(&existing).unwrap(),
            b"previous result",
            "{case:?}"
        );
        assert_eq!(std::fs::read(&x).unwrap(), before, "{case:?}");
        assert_eq!(std::fs::read(&hard).unwrap(), before, "{case:?}");
    }
    // predict and train check their outputs before the work.
    let o = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        x.to_str().unwrap(),
        "--out",
        x.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let start = std::time::Instant::now();
    let o = relprop(&[
        "train",
        "lenet5",
        "--quiet",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        start.elapsed().as_secs() < 10,
        "train ran before checking its output"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
