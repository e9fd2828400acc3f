//! `relprop demo imagenet`: the SGLRP paper's figure on real photos, with
//! `efficientnet_lite0` (weights from the cache, everything else bundled; runs offline).
//!
//! Rows 1-4: each bundled photo, then its gradient, LRP (EpsilonPlus), CLRP and SGLRP maps
//! for its top class, overlaid on the photo. Rows 5-8: two photos side by side (one
//! 224x448 input), each explained once for the left photo's class and once for the right
//! one's: a map that discriminates lies on the half that shows the class.

use super::error::{CliError, CliResult};
use super::models::load;
use relprop::core::Tensor;
use relprop::evaluation::method;
use relprop::evaluation::photo_pairs::{composite, prepare_photos};
use relprop::explain::heatmap::{overlay, write_png_rgb, ColorMap};
use relprop::explain::{explain, Targets};
use relprop::zoo::imagenet::class_name;
use relprop::zoo::photos::{CROP, PHOTOS};
use std::path::Path;
use std::time::Instant;

/// The figure's columns after the input.
const METHODS: [&str; 4] = ["gradient", "lrp-epsilon-plus", "clrp1", "sglrp"];
/// The photo pairs of the composite rows (indices into the bundled photos).
const PAIRS: [(usize, usize); 2] = [(0, 1), (2, 3)];
/// White pixels between cells.
const PAD: usize = 4;
/// How much of the heatmap shows over the grey photo.
const ALPHA: f32 = 0.7;

/// An RGB image, row-major, 3 bytes a pixel.
struct Rgb {
    data: Vec<u8>,
    h: usize,
    w: usize,
}

/// A `[1, 3, h, w]` (or one sample of a batch) image in [0, 1] as RGB bytes and as grey.
fn to_rgb_and_grey(x: &[f32], h: usize, w: usize) -> (Rgb, Vec<f32>) {
    let plane = h * w;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let data = (0..plane)
        .flat_map(|i| [byte(x[i]), byte(x[plane + i]), byte(x[2 * plane + i])])
        .collect();
    let grey = (0..plane)
        .map(|i| 0.299 * x[i] + 0.587 * x[plane + i] + 0.114 * x[2 * plane + i])
        .collect();
    (Rgb { data, h, w }, grey)
}

/// Sample `i`'s relevance summed over the colour channels.
fn channel_sum(r: &Tensor, i: usize) -> Vec<f32> {
    let (h, w) = (r.shape()[2], r.shape()[3]);
    let plane = h * w;
    let s = &r.data()[i * 3 * plane..(i + 1) * 3 * plane];
    (0..plane)
        .map(|p| s[p] + s[plane + p] + s[2 * plane + p])
        .collect()
}

/// Lays rows of cells out on a white canvas, `PAD` pixels apart.
fn compose(rows: &[Vec<Rgb>]) -> Rgb {
    let width = rows
        .iter()
        .map(|r| r.iter().map(|c| c.w + PAD).sum::<usize>() + PAD)
        .max()
        .unwrap_or(PAD);
    let height = rows
        .iter()
        .map(|r| r.iter().map(|c| c.h).max().unwrap_or(0) + PAD)
        .sum::<usize>()
        + PAD;
    let mut data = vec![255u8; width * height * 3];
    let mut top = PAD;
    for row in rows {
        let mut left = PAD;
        for cell in row {
            for y in 0..cell.h {
                let to = ((top + y) * width + left) * 3;
                data[to..to + cell.w * 3]
                    .copy_from_slice(&cell.data[y * cell.w * 3..(y + 1) * cell.w * 3]);
            }
            left += cell.w + PAD;
        }
        top += row.iter().map(|c| c.h).max().unwrap_or(0) + PAD;
    }
    Rgb {
        data,
        h: height,
        w: width,
    }
}

/// One figure row: `x` (`[n, 3, h, w]`, sample `i`), then each method's map for `target`.
fn explained_row(
    model: &dyn relprop::nn::Module,
    x: &Tensor,
    target: usize,
) -> CliResult<Vec<Rgb>> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let (photo, grey) = to_rgb_and_grey(x.data(), h, w);
    let mut cells = vec![photo];
    for name in METHODS {
        let r = explain(model, x, &Targets::Class(target), &method(name)?)?.relevance;
        let map = channel_sum(&r, 0);
        cells.push(Rgb {
            data: overlay(&map, &grey, h, w, ColorMap::Bwr, ALPHA),
            h,
            w,
        });
    }
    Ok(cells)
}

/// `image` as a JPEG of quality 85.
fn jpeg(image: &Rgb) -> CliResult<Vec<u8>> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
        .write_image(
            &image.data,
            image.w as u32,
            image.h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| CliError::internal(format!("JPEG encoding: {e}")))?;
    Ok(bytes)
}

/// Writes `<out>/demo_imagenet.png` (and a JPEG copy) and says what is in it.
pub fn run(out: &Path) -> CliResult {
    let start = Instant::now();
    let figure = out.join("demo_imagenet.png");
    // Fails before any work when the weights are missing (exit 2 with the fetch command).
    let model = load("efficientnet_lite0", None)?;
    std::fs::create_dir_all(out).map_err(|e| CliError::input(format!("{}: {e}", out.display())))?;
    relprop::nn::io::check_outputs(&[&figure, &out.join("demo_imagenet.jpg")], &[])?;
    let photos = prepare_photos(&model)?;
    let name = |c: usize| class_name(c).unwrap_or("?");
    let mut rows = Vec::new();
    for (i, crop) in photos.crops.iter().enumerate() {
        let x = Tensor::from_vec(crop.clone(), &[1, 3, CROP, CROP])?;
        rows.push(explained_row(&model, &x, photos.classes[i])?);
        outln!(
            "row {}: {} -> {} ({})",
            rows.len(),
            PHOTOS[i].name,
            name(photos.classes[i]),
            photos.classes[i]
        );
    }
    for (l, r) in PAIRS {
        let x = composite(&photos, l, r)?;
        for side in [l, r] {
            rows.push(explained_row(&model, &x, photos.classes[side])?);
            outln!(
                "row {}: {} | {} explained for {} ({})",
                rows.len(),
                PHOTOS[l].name,
                PHOTOS[r].name,
                name(photos.classes[side]),
                PHOTOS[side].name
            );
        }
    }
    let canvas = compose(&rows);
    write_png_rgb(&figure, &canvas.data, canvas.h, canvas.w)
        .map_err(|e| CliError::input(format!("{}: {e}", figure.display())))?;
    outln!("wrote {}", figure.display());
    // The same figure as a JPEG, a tenth of the size, for documents.
    let jpeg_path = out.join("demo_imagenet.jpg");
    relprop::nn::io::write_atomic(&jpeg_path, &jpeg(&canvas)?)?;
    outln!("wrote {}", jpeg_path.display());
    outln!(
        "  columns: input | {} (red: for the class, blue: against; over the photo in grey)",
        METHODS.join(" | ")
    );
    outln!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
