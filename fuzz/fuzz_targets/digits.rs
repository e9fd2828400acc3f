//! The zoo's digit-sheet decoder `digits::decode(png, manifest)`.
//!
//! Input layout: one selector byte, then either (even selector) PNG bytes decoded with the
//! bundled manifest, or (odd selector) manifest text, a 0 byte, and PNG bytes, so both the
//! manifest parser and the sheet cutter are reached with small sheets. PNG chunk CRCs are
//! repaired before decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_nn::io::refresh_png_crcs;
use relprop_zoo::digits;

static MANIFEST: &str = include_str!("../../zoo/data/digits.txt");

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (manifest, png) = if selector % 2 == 0 {
        (MANIFEST.to_string(), rest)
    } else {
        match rest.iter().position(|&b| b == 0) {
            Some(at) => (
                String::from_utf8_lossy(&rest[..at]).into_owned(),
                &rest[at + 1..],
            ),
            None => return,
        }
    };
    let mut png = png.to_vec();
    refresh_png_crcs(&mut png);
    if let Ok(d) = digits::decode(&png, &manifest) {
        assert_eq!(d.images.len(), d.labels.len() * digits::PIXELS);
    }
});
