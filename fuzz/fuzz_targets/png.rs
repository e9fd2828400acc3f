//! PNG input images: `read_png_grey` on arbitrary bytes, then on the same bytes with every
//! complete chunk's CRC repaired, so mutations reach the image decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_explain::heatmap::read_png_grey;
use relprop_nn::io::refresh_png_crcs;

fn check(bytes: &[u8]) {
    if let Ok((grey, h, w)) = read_png_grey(bytes) {
        assert_eq!(grey.len(), h * w);
        assert!(grey.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    refresh_png_crcs(&mut fixed);
    if fixed != data {
        check(&fixed);
    }
});
