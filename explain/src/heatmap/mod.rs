//! Heatmaps: signed relevance maps rendered with centred colour maps, blended over the
//! input, laid out in grids and written as PNG.
//!
//! ```
//! use relprop_explain::heatmap::{heatmap_rgb, ColorMap};
//!
//! let rgb = heatmap_rgb(&[-2.0, 0.0, 1.0], 1, 3, ColorMap::Bwr);
//! assert_eq!(&rgb[..3], &[0, 0, 255]); // the most negative value is full blue
//! assert_eq!(&rgb[3..6], &[255, 255, 255]); // 0 stays white
//! assert_eq!(&rgb[6..], &[255, 128, 128]); // +1 is half of the max |value| 2
//! ```

mod colormap;
pub mod font;
mod grid;
mod image;
mod legend;

pub use colormap::{ColorMap, COLORMAP_NAMES};
pub use grid::{Cell, Grid, Normalisation, NEAR_ZERO_SEED};
pub use image::{
    png_dimensions, png_rgb_bytes, read_png_grey, read_png_rgb, write_png_rgb, HeatmapError,
    MAX_PNG_SIDE,
};

/// The value at `i`, with missing and non-finite values read as 0.
fn value_at(map: &[f32], i: usize) -> f32 {
    map.get(i).copied().filter(|v| v.is_finite()).unwrap_or(0.0)
}

/// Renders an `h x w` map as RGB bytes (row-major, 3 per pixel), dividing by the largest
/// absolute value so the map spans `[-1, 1]` symmetrically: 0 keeps the centre colour and
/// an all-zero map is all centre colour.
///
/// `map` should hold `h * w` values; missing or non-finite values are drawn as 0 and extra
/// values are ignored.
pub fn heatmap_rgb(map: &[f32], h: usize, w: usize, cmap: ColorMap) -> Vec<u8> {
    heatmap_rgb_scaled(map, h, w, cmap, max_abs(map, h * w))
}

/// The largest finite |value| among the first `len` values of `map`.
pub(crate) fn max_abs(map: &[f32], len: usize) -> f32 {
    (0..len).fold(0.0f32, |m, i| m.max(value_at(map, i).abs()))
}

/// As [`heatmap_rgb`], with `scale` the |value| drawn at full colour (values beyond it
/// are clamped): maps drawn at one scale compare in magnitude.
pub fn heatmap_rgb_scaled(map: &[f32], h: usize, w: usize, cmap: ColorMap, scale: f32) -> Vec<u8> {
    let len = h * w;
    let mut out = Vec::with_capacity(len * 3);
    for i in 0..len {
        let v = value_at(map, i);
        let v = if scale > 0.0 {
            (v / scale).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        out.extend_from_slice(&cmap.rgb(v));
    }
    out
}

/// Renders an `h x w` grey image (values in `[0, 1]`, clamped; missing or non-finite read
/// as 0) as RGB bytes.
pub fn grey_rgb(grey: &[f32], h: usize, w: usize) -> Vec<u8> {
    (0..h * w)
        .flat_map(|i| [colormap::to_u8(value_at(grey, i)); 3])
        .collect()
}

/// The heatmap of `map` blended over the grey input: `alpha * heatmap + (1 - alpha) *
/// input` per channel, with `alpha` clamped to `[0, 1]` (1: the heatmap alone; 0: the
/// input alone). Both images are `h x w`, read as in [`heatmap_rgb`] and [`grey_rgb`].
pub fn overlay(
    map: &[f32],
    input_grey: &[f32],
    h: usize,
    w: usize,
    cmap: ColorMap,
    alpha: f32,
) -> Vec<u8> {
    let alpha = if alpha.is_nan() {
        1.0
    } else {
        alpha.clamp(0.0, 1.0)
    };
    let heat = heatmap_rgb(map, h, w, cmap);
    let grey = grey_rgb(input_grey, h, w);
    heat.iter()
        .zip(&grey)
        .map(|(&a, &b)| (alpha * a as f32 + (1.0 - alpha) * b as f32).round() as u8)
        .collect()
}
