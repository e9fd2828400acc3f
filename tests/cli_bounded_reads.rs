//! Reads are bounded: an endless input is refused at the loaders' size limit, and a PNG's
//! declared canvas is compared with the model's input before any pixel is decoded.

mod common;

use common::{relprop, scratch};
use relprop::explain::heatmap::write_png_rgb;
use std::time::{Duration, Instant};

#[test]
fn an_endless_input_is_refused_at_the_limit() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let start = Instant::now();
    let o = relprop(&["predict", "--model", "lenet5", "--input", "/dev/zero"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("allowed"),
        "{err}"
    );
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
