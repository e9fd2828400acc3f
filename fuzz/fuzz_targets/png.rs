//! PNG input images: `read_png_grey` on arbitrary bytes, then on the same bytes with every
//! complete chunk's CRC repaired, so mutations reach the image decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_explain::heatmap::read_png_grey;
use relprop_nn::io::crc32;

/// Rewrites the CRC of every complete chunk after the 8-byte signature.
fn repair(bytes: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let Some(end) = (at + 8)
            .checked_add(len as usize)
            .filter(|&e| e + 4 <= bytes.len())
        else {
            return;
        };
        let crc = crc32(&bytes[at + 4..end]);
        bytes[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

fn check(bytes: &[u8]) {
    if let Ok((grey, h, w)) = read_png_grey(bytes) {
        assert_eq!(grey.len(), h * w);
        assert!(grey.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    repair(&mut fixed);
    if fixed != data {
        check(&fixed);
    }
});
