//! Colour maps, heatmap rendering, PNG reading and writing, and grids.

use proptest::prelude::*;
use relprop_explain::heatmap::{
    grey_rgb, heatmap_rgb, overlay, read_png_grey, write_png_rgb, Cell, ColorMap, Grid,
    HeatmapError, COLORMAP_NAMES,
};
use std::path::PathBuf;

#[test]
fn colour_map_endpoints_and_centres() {
    use ColorMap::*;
    let cases = [
        (Bwr, [0, 0, 255], [255, 255, 255], [255, 0, 0]),
        (Seismic, [0, 0, 77], [255, 255, 255], [128, 0, 0]),
        (ColdNHot, [0, 255, 255], [0, 0, 0], [255, 255, 255]),
        (Gray, [0, 0, 0], [128, 128, 128], [255, 255, 255]),
    ];
    for (cmap, lo, mid, hi) in cases {
        assert_eq!(cmap.rgb(-1.0), lo, "{cmap} at -1");
        assert_eq!(cmap.rgb(0.0), mid, "{cmap} at 0");
        assert_eq!(cmap.centre(), mid);
        assert_eq!(cmap.rgb(1.0), hi, "{cmap} at +1");
        // Out of range values clamp; NaN is the centre.
        assert_eq!(cmap.rgb(-7.0), lo);
        assert_eq!(cmap.rgb(7.0), hi);
        assert_eq!(cmap.rgb(f32::NAN), mid);
    }
    // Inner nodes.
    assert_eq!(Seismic.rgb(-0.5), [0, 0, 255]);
    assert_eq!(Seismic.rgb(0.5), [255, 0, 0]);
    assert_eq!(ColdNHot.rgb(-0.5), [0, 0, 255]);
    assert_eq!(ColdNHot.rgb(1.0 / 3.0), [255, 0, 0]);
    assert_eq!(ColdNHot.rgb(2.0 / 3.0), [255, 255, 0]);
    // bwr is linear: half way to red is pink.
    assert_eq!(Bwr.rgb(0.5), [255, 128, 128]);
    assert_eq!(Bwr.rgb(-0.5), [128, 128, 255]);
}

#[test]
fn diverging_maps_are_symmetric() {
    for v in [0.1f32, 0.25, 0.6, 0.9] {
        let [r, g, b] = ColorMap::Bwr.rgb(v);
        assert_eq!(ColorMap::Bwr.rgb(-v), [b, g, r]);
        // seismic's dark ends differ ((0,0,0.3) vs (0.5,0,0)); the inner half is symmetric.
        let [r, g, b] = ColorMap::Seismic.rgb(v / 2.0);
        assert_eq!(ColorMap::Seismic.rgb(-v / 2.0), [b, g, r]);
    }
}

#[test]
fn colour_maps_by_name() {
    for name in COLORMAP_NAMES {
        let cmap = ColorMap::from_name(name).unwrap();
        assert_eq!(cmap.name(), name);
        assert_eq!(cmap.to_string(), name);
    }
    assert_eq!(ColorMap::from_name("BWR"), Some(ColorMap::Bwr));
    assert_eq!(ColorMap::from_name("viridis"), None);
}

#[test]
fn heatmaps_normalise_symmetrically() {
    let map = [-1.0, 0.0, 0.5, 2.0];
    let rgb = heatmap_rgb(&map, 2, 2, ColorMap::Bwr);
    assert_eq!(rgb.len(), 12);
    assert_eq!(&rgb[0..3], &[128, 128, 255]); // -1 / 2
    assert_eq!(&rgb[3..6], &[255, 255, 255]); // 0 stays white
    assert_eq!(&rgb[6..9], &[255, 191, 191]); // 0.5 / 2
    assert_eq!(&rgb[9..12], &[255, 0, 0]); // the max |value|
                                           // Scale does not matter.
    let scaled: Vec<f32> = map.iter().map(|v| v * 1e-6).collect();
    assert_eq!(heatmap_rgb(&scaled, 2, 2, ColorMap::Bwr), rgb);
    // An all-positive map does not stretch to the blue end: 0 is still white.
    let rgb = heatmap_rgb(&[0.0, 1.0], 1, 2, ColorMap::Seismic);
    assert_eq!(&rgb[..3], &[255, 255, 255]);
    // All zero: all centre colour, for every map.
    for cmap in ColorMap::ALL {
        let rgb = heatmap_rgb(&[0.0; 6], 2, 3, cmap);
        assert!(rgb.chunks(3).all(|p| p == cmap.centre()), "{cmap}");
    }
    // Missing and non-finite values are drawn as 0.
    let rgb = heatmap_rgb(&[f32::NAN, 1.0], 1, 3, ColorMap::Bwr);
    assert_eq!(rgb, [255, 255, 255, 255, 0, 0, 255, 255, 255]);
}

#[test]
fn overlay_blends_heatmap_over_input() {
    let (map, grey) = ([-1.0, 1.0], [0.0, 1.0]);
    let heat = heatmap_rgb(&map, 1, 2, ColorMap::Bwr);
    assert_eq!(overlay(&map, &grey, 1, 2, ColorMap::Bwr, 1.0), heat);
    assert_eq!(
        overlay(&map, &grey, 1, 2, ColorMap::Bwr, 0.0),
        grey_rgb(&grey, 1, 2)
    );
    let half = overlay(&map, &grey, 1, 2, ColorMap::Bwr, 0.5);
    assert_eq!(half, [0, 0, 128, 255, 128, 128]);
}

/// Encodes with the `png` crate directly, so reading is tested against an independent writer.
fn encode(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
    encode_with(w, h, color, depth, data, |_| {})
}

fn encode_with(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    setup: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        setup(&mut enc);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
    }
    out
}

fn grey_ramp() -> (Vec<u8>, u32, u32) {
    let (w, h) = (16u32, 16u32);
    ((0..=255u8).collect(), w, h)
}

#[test]
fn eight_bit_grey_round_trips_exactly() {
    let (data, w, h) = grey_ramp();
    let bytes = encode(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &data);
    let (grey, gh, gw) = read_png_grey(&bytes).unwrap();
    assert_eq!((gh, gw), (16, 16));
    for (k, &v) in grey.iter().enumerate() {
        assert_eq!(v, k as f32 / 255.0);
    }
}

#[test]
fn other_layouts_are_read_as_luminance() {
    let (w, h) = (3u32, 2u32);
    let levels = [0u8, 51, 102, 153, 204, 255];
    let want: Vec<f32> = levels.iter().map(|&k| k as f32 / 255.0).collect();
    let close = |got: &[f32]| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    };
    // 16-bit grey, big endian: k * 257 is k/255 exactly.
    let g16: Vec<u8> = levels
        .iter()
        .flat_map(|&k| (k as u16 * 257).to_be_bytes())
        .collect();
    let bytes = encode(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &g16,
    );
    close(&read_png_grey(&bytes).unwrap().0);
    // Grey with alpha: alpha ignored.
    let ga: Vec<u8> = levels.iter().flat_map(|&k| [k, 7]).collect();
    let bytes = encode(
        w,
        h,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &ga,
    );
    close(&read_png_grey(&bytes).unwrap().0);
    // RGB and RGBA with equal channels.
    let rgb: Vec<u8> = levels.iter().flat_map(|&k| [k, k, k]).collect();
    let bytes = encode(w, h, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
    close(&read_png_grey(&bytes).unwrap().0);
    let rgba: Vec<u8> = levels.iter().flat_map(|&k| [k, k, k, 255]).collect();
    let bytes = encode(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &rgba);
    close(&read_png_grey(&bytes).unwrap().0);
    // A 4-bit palette image.
    let palette: Vec<u8> = levels.iter().flat_map(|&k| [k, k, k]).collect();
    let indices = [0x01, 0x20, 0x34, 0x50]; // two rows of 3 nibbles, each row padded
    let bytes = encode_with(
        w,
        h,
        png::ColorType::Indexed,
        png::BitDepth::Four,
        &indices,
        |e| e.set_palette(palette),
    );
    close(&read_png_grey(&bytes).unwrap().0);
    // Colour uses BT.601 weights.
    let bytes = encode(
        1,
        1,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &[255, 0, 0],
    );
    assert!((read_png_grey(&bytes).unwrap().0[0] - 0.299).abs() < 1e-6);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relprop-heatmap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn written_rgb_reads_back() {
    let dir = temp_dir("write");
    let path = dir.join("map.png");
    let rgb = heatmap_rgb(&[-1.0, 0.0, 1.0, 0.5, -0.5, 0.0], 2, 3, ColorMap::Bwr);
    write_png_rgb(&path, &rgb, 2, 3).unwrap();
    // Overwriting is fine, and no temporary file is left behind.
    write_png_rgb(&path, &rgb, 2, 3).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("map.png")]);
    let (grey, h, w) = read_png_grey(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!((h, w), (2, 3));
    // White reads as 1 and pure blue as its BT.601 luminance.
    assert!((grey[1] - 1.0).abs() < 1e-5);
    assert!((grey[0] - 0.114).abs() < 1e-5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_writes_are_errors() {
    let dir = temp_dir("bad-write");
    let err = write_png_rgb(&dir.join("a.png"), &[0; 5], 1, 2).unwrap_err();
    assert!(matches!(err, HeatmapError::Invalid(_)), "{err}");
    assert!(write_png_rgb(&dir.join("a.png"), &[], 0, 0).is_err());
    let err = write_png_rgb(&dir.join("missing").join("a.png"), &[0; 3], 1, 1).unwrap_err();
    assert!(matches!(err, HeatmapError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    let mut bytes = encode(1, 1, png::ColorType::Grayscale, png::BitDepth::Eight, &[9]);
    // IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
    bytes[16..20].copy_from_slice(&9000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&9000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    match read_png_grey(&bytes) {
        Err(HeatmapError::TooLarge { width, height }) => assert_eq!((width, height), (9000, 9000)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn corrupted_pngs_are_errors() {
    let (data, w, h) = grey_ramp();
    let good = encode(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &data);
    assert!(read_png_grey(&good).is_ok());
    let bad = [
        Vec::new(),
        b"not a png at all".to_vec(),
        good[..8].to_vec(),
        good[..good.len() / 2].to_vec(),
        {
            let mut b = good.clone();
            b[0] ^= 0x40; // signature
            b
        },
        {
            let mut b = good.clone();
            b[18] ^= 0x01; // IHDR width (checksum mismatch)
            b
        },
        {
            let mut b = good.clone();
            let mid = good.len() / 2;
            b[mid] ^= 0x10; // inside the image data
            b
        },
    ];
    for (k, bytes) in bad.iter().enumerate() {
        let err = read_png_grey(bytes).expect_err(&format!("case {k} should fail"));
        assert!(!err.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_byte_string_panics(cut in 0usize..400, flips in prop::collection::vec((0usize..400, 0u8..8), 0..4)) {
        let (data, w, h) = grey_ramp();
        let mut bytes = encode(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &data);
        for (at, bit) in flips {
            let n = bytes.len();
            bytes[at % n] ^= 1 << bit;
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = read_png_grey(&bytes);
    }

    #[test]
    fn random_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut with_sig = b"\x89PNG\r\n\x1a\n".to_vec();
        with_sig.extend_from_slice(&bytes);
        prop_assert!(read_png_grey(&with_sig).is_err());
        let _ = read_png_grey(&bytes);
    }
}

#[test]
fn grid_has_the_right_size_and_layout() {
    let (cell, pad) = (10, 2);
    let mut grid = Grid::new(cell, pad);
    grid.add_row(vec![
        Cell::Input(vec![0.0; 4], 2, 2),
        Cell::Heatmap(vec![1.0; 25], 5, 5, ColorMap::Bwr),
        Cell::Empty,
    ]);
    grid.add_row(vec![Cell::Input(vec![0.0, 1.0], 1, 2)]);
    assert_eq!((grid.rows(), grid.columns()), (2, 3));
    let (rgb, h, w) = grid.to_rgb();
    assert_eq!((h, w), (2 * cell + pad, 3 * cell + 2 * pad));
    assert_eq!(rgb.len(), h * w * 3);
    let px = |y: usize, x: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
    assert_eq!(px(0, 0), [0, 0, 0]); // black input, upscaled
    assert_eq!(px(9, 9), [0, 0, 0]);
    assert_eq!(px(5, 10), [255, 255, 255]); // padding
    assert_eq!(px(0, 12), [255, 0, 0]); // heatmap cell
    assert_eq!(px(9, 21), [255, 0, 0]);
    assert_eq!(px(5, 27), [255, 255, 255]); // empty cell

    // The 1x2 image (black, white) fills the cell's width: 5 rows high, centred vertically.
    let top = cell + pad;
    for (dy, want) in [(1, 255), (2, 0), (6, 0), (7, 255)] {
        assert_eq!(px(top + dy, 0), [want; 3], "row {dy}");
    }
    assert_eq!(px(top + 4, 4), [0; 3]);
    assert_eq!(px(top + 4, 5), [255; 3]); // the white half
                                          // An empty grid renders as nothing; saving it is an error.
    assert_eq!(Grid::new(4, 1).to_rgb(), (Vec::new(), 0, 0));
}

#[test]
fn grid_saves_as_png() {
    let dir = temp_dir("grid");
    let path = dir.join("grid.png");
    let mut grid = Grid::new(8, 1);
    grid.add_row(vec![Cell::Input(vec![0.5; 4], 2, 2), Cell::Empty]);
    grid.save(&path).unwrap();
    let (grey, h, w) = read_png_grey(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!((h, w), (8, 17));
    assert!((grey[0] - 128.0 / 255.0).abs() < 1e-5);
    assert!(Grid::new(4, 1).save(&dir.join("empty.png")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
