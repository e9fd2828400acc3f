//! Reads are bounded: an `.npy` input is read no further than its header declares (an
//! endless stream is refused after its first bytes), and a PNG's declared canvas is
//! compared with the model's input before any pixel is decoded.

mod common;

use common::{relprop, scratch};
use relprop::explain::heatmap::write_png_rgb;
use std::time::{Duration, Instant};

#[test]
fn an_endless_input_is_refused_at_its_first_bytes() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let start = Instant::now();
    let o = relprop(&["predict", "--model", "lenet5", "--input", "/dev/zero"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/zero") && err.contains("magic"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_large_png_canvas_is_refused_before_decoding() {
    let dir = scratch("big-png");
    let png = dir.join("big.png");
    // 3000x3000 of one colour compresses to a small file.
    write_png_rgb(&png, &vec![200u8; 3000 * 3000 * 3], 3000, 3000).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() < 1 << 20);
    let out = dir.join("r.npy");
    let o = relprop(&[
        "explain",
        "--model",
        "lenet5",
        "--method",
        "lrp",
        "--input",
        png.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("3000x3000") && err.contains("28x28"), "{err}");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Feeds `header` and then zeros without end into a FIFO that `relprop predict` reads;
/// returns the command's output once it has given up on the stream.
#[cfg(unix)]
fn predict_from_endless_fifo(name: &str, header: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    let dir = scratch(name);
    let fifo = dir.join("in.npy");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let path = fifo.clone();
    // Opening a FIFO for writing waits for a reader; writing stops when the reader closes.
    let writer = std::thread::spawn(move || {
        let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        if w.write_all(&header).is_err() {
            return;
        }
        let zeros = vec![0u8; 1 << 16];
        while w.write_all(&zeros).is_ok() {}
    });
    let out = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        fifo.to_str().unwrap(),
    ]);
    if !writer.is_finished() {
        // The reader never opened the FIFO: open it once so the writer is released.
        let _ = std::fs::File::open(&fifo);
    }
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    out
}

/// A version 1.0 `.npy` header for float32 data of `shape`.
#[cfg(unix)]
fn npy_header(shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

#[cfg(unix)]
#[test]
fn a_stream_longer_than_its_header_declares_is_refused_after_the_declared_data() {
    let o = predict_from_endless_fifo("fifo-trailing", npy_header("(1, 1, 28, 28)"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bytes follow"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_stream_declaring_more_than_the_limit_is_refused_before_its_data() {
    let o = predict_from_endless_fifo("fifo-huge", npy_header("(1000000, 1, 28, 28)"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("(1000000, 1, 28, 28)") || err.contains("1000000"),
        "{err}"
    );
    assert!(err.contains("allowed"), "{err}");
}

#[cfg(unix)]
#[test]
fn endless_weights_are_refused_at_their_first_bytes() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let dir = scratch("endless-weights");
    let x = dir.join("x.npy");
    relprop::nn::io::write_npy_f32(
        &x,
        &relprop::core::Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 1),
    )
    .unwrap();
    // A checkpoint (by default) and a safetensors file (by its name), both endless zeros.
    let st = dir.join("w.safetensors");
    std::os::unix::fs::symlink("/dev/zero", &st).unwrap();
    for (weights, expected) in [("/dev/zero", "magic"), (st.to_str().unwrap(), "header")] {
        let o = relprop(&[
            "predict",
            "--model",
            "lenet5",
            "--weights",
            weights,
            "--input",
            x.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{weights}: {err}");
        assert!(err.contains(expected), "{weights}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
