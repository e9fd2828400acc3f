//! Printing never panics: a closed pipe ends a command quietly with status 141 (as a
//! SIGPIPE would), a full stdout is exit 2 with a message, and no output file is written.

mod common;

use common::scratch;
use relprop::core::Tensor;
use relprop::nn::io::write_npy_f32;
use std::process::{Command, Stdio};

fn relprop_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relprop"));
    c.args(args);
    c
}

#[test]
fn a_closed_pipe_ends_quietly_and_writes_nothing() {
    let dir = scratch("stdout-pipe");
    let x = dir.join("x.npy");
    write_npy_f32(&x, &Tensor::rand_uniform(&[64, 1, 28, 28], 0.0, 1.0, 1)).unwrap();
    let out = dir.join("logits.npy");
    for args in [
        vec![
            "predict",
            "--model",
            "lenet5",
            "--input",
            x.to_str().unwrap(),
        ],
        vec![
            "predict",
            "--model",
            "lenet5",
            "--input",
            x.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["info", "vgg_small"],
    ] {
        let mut child = relprop_cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader leaves before anything is printed
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && err.is_empty(),
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?} wrote its output");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_stdout_is_exit_2_with_a_message() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this system: nothing to check
    };
    let o = relprop_cmd(&["info", "lenet5"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot write to standard output"),
        "{err}"
    );
}
