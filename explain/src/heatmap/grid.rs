//! A grid of images and heatmaps, built row by row and rendered as one RGB image.

use super::image::{png_rgb_bytes, write_png_rgb, HeatmapError};
use super::{grey_rgb, heatmap_rgb, ColorMap};
use std::path::Path;

/// One cell of a [`Grid`].
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A grey image `(values in [0, 1], h, w)`.
    Input(Vec<f32>, usize, usize),
    /// A signed map `(values, h, w, colour map)`, normalised by its own largest |value|
    /// as in [`heatmap_rgb`].
    Heatmap(Vec<f32>, usize, usize, ColorMap),
    /// Background only.
    Empty,
}

impl Cell {
    /// The cell rendered at its own resolution: `(rgb, h, w)`, or `None` when there is
    /// nothing to draw.
    fn render(&self) -> Option<(Vec<u8>, usize, usize)> {
        match self {
            Cell::Input(v, h, w) if *h > 0 && *w > 0 => Some((grey_rgb(v, *h, *w), *h, *w)),
            Cell::Heatmap(v, h, w, cmap) if *h > 0 && *w > 0 => {
                Some((heatmap_rgb(v, *h, *w, *cmap), *h, *w))
            }
            _ => None,
        }
    }
}

/// Images and heatmaps laid out in rows of `cell x cell` squares, `pad` white pixels
/// apart, on a white background.
///
/// Each image is scaled nearest-neighbour to fit its square, keeping its aspect ratio, and
/// centred. Rows may have different lengths; the grid is as wide as the longest row.
///
/// ```
/// use relprop_explain::heatmap::{Cell, ColorMap, Grid};
///
/// let mut grid = Grid::new(28, 2);
/// grid.add_row(vec![
///     Cell::Input(vec![0.5; 4], 2, 2),
///     Cell::Heatmap(vec![-1.0, 0.0, 0.5, 1.0], 2, 2, ColorMap::Bwr),
/// ]);
/// let (rgb, h, w) = grid.to_rgb();
/// assert_eq!((h, w), (28, 28 * 2 + 2));
/// assert_eq!(rgb.len(), h * w * 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    cell: usize,
    pad: usize,
    rows: Vec<Vec<Cell>>,
}

impl Grid {
    /// An empty grid of `cell x cell`-pixel cells (`cell = 0` is taken as 1) separated by
    /// `pad` pixels.
    pub fn new(cell: usize, pad: usize) -> Self {
        Grid {
            cell: cell.max(1),
            pad,
            rows: Vec::new(),
        }
    }

    /// Appends a row of cells.
    pub fn add_row(&mut self, cells: Vec<Cell>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Number of columns: the length of the longest row.
    pub fn columns(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// The rendered size `(h, w)` in pixels: `k` cells take `k * cell + (k - 1) * pad`.
    pub fn size(&self) -> (usize, usize) {
        let span = |k: usize| {
            if k == 0 {
                0
            } else {
                k * self.cell + (k - 1) * self.pad
            }
        };
        (span(self.rows()), span(self.columns()))
    }

    /// Renders the grid: `(rgb bytes, h, w)`, row-major with 3 bytes per pixel.
    pub fn to_rgb(&self) -> (Vec<u8>, usize, usize) {
        let (h, w) = self.size();
        let mut out = vec![255u8; h * w * 3];
        let step = self.cell + self.pad;
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Some((rgb, ih, iw)) = cell.render() {
                    self.blit(&mut out, w, (r * step, c * step), &rgb, ih, iw);
                }
            }
        }
        (out, h, w)
    }

    /// Renders the grid and writes it as a PNG (atomically, see [`write_png_rgb`]).
    pub fn save(&self, path: &Path) -> Result<(), HeatmapError> {
        let (rgb, h, w) = self.to_rgb();
        write_png_rgb(path, &rgb, h, w)
    }

    /// Renders the grid as PNG bytes (to write together with other outputs).
    pub fn to_png(&self) -> Result<Vec<u8>, HeatmapError> {
        let (rgb, h, w) = self.to_rgb();
        png_rgb_bytes(&rgb, h, w)
    }

    /// Draws an `ih x iw` image into the cell whose top-left corner is `at`.
    fn blit(
        &self,
        out: &mut [u8],
        out_w: usize,
        at: (usize, usize),
        rgb: &[u8],
        ih: usize,
        iw: usize,
    ) {
        let side = ih.max(iw);
        // Fit the longer side to the cell; keep at least one pixel on the shorter one.
        let (dh, dw) = (
            (ih * self.cell / side).max(1),
            (iw * self.cell / side).max(1),
        );
        let (top, left) = (at.0 + (self.cell - dh) / 2, at.1 + (self.cell - dw) / 2);
        for y in 0..dh {
            let sy = y * ih / dh;
            for x in 0..dw {
                let sx = x * iw / dw;
                let src = (sy * iw + sx) * 3;
                let dst = ((top + y) * out_w + left + x) * 3;
                out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
            }
        }
    }
}
