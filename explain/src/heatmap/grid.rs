//! A grid of images and heatmaps, built row by row and rendered as one RGB image, with
//! optional row and column titles and a legend (colour bar, normalisation, notes).

use super::font::{draw_text, text_width, HEIGHT as GLYPH_H};
use super::image::{png_rgb_bytes, write_png_rgb, HeatmapError};
use super::{grey_rgb, heatmap_rgb_scaled, max_abs, ColorMap};
use std::path::Path;

/// How heatmaps are scaled to the colour map's `[-1, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalisation {
    /// Each map by its own largest |value| (shapes compare, magnitudes do not).
    #[default]
    PerMap,
    /// The maps of a row share the row's largest |value| (magnitudes compare along a row).
    PerRow,
}

impl Normalisation {
    /// The sentence the legend prints.
    pub fn describe(self) -> &'static str {
        match self {
            Normalisation::PerMap => "each map scaled by its own max |R|",
            Normalisation::PerRow => "maps in a row share one scale: the row's max |R|",
        }
    }
}

/// Total relevance (the seed's sum of |values|) below which a map is drawn as [`Cell::Faint`]
/// by [`Cell::relevance`]: with a softmax-based seed (SGLRP), `2 p_t (1 - p_t) < 1e-3`
/// means a saturated softmax, whose map is near zero everywhere.
pub const NEAR_ZERO_SEED: f64 = 1e-3;

/// One cell of a [`Grid`].
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A grey image `(values in [0, 1], h, w)`.
    Input(Vec<f32>, usize, usize),
    /// A signed map `(values, h, w, colour map)`, normalised as the grid's
    /// [`Normalisation`] says (by default its own largest |value|, as in
    /// [`super::heatmap_rgb`]).
    Heatmap(Vec<f32>, usize, usize, ColorMap),
    /// A map whose total relevance is near zero (a saturated softmax): drawn washed out
    /// towards grey with `note` written across it, so its normalised colours do not read as
    /// strong evidence. `(values, h, w, colour map, note)`.
    Faint(Vec<f32>, usize, usize, ColorMap, String),
    /// Background only.
    Empty,
}

impl Cell {
    /// A heatmap cell for a map explained from a seed of total size `seed_abs` (the sum
    /// of its |values|, [`crate::Audit::seed_abs`]): [`Cell::Faint`] with a note when it is
    /// below [`NEAR_ZERO_SEED`], else [`Cell::Heatmap`].
    pub fn relevance(map: Vec<f32>, h: usize, w: usize, cmap: ColorMap, seed_abs: f64) -> Cell {
        if seed_abs < NEAR_ZERO_SEED {
            Cell::Faint(map, h, w, cmap, format!("~0: {seed_abs:.0e}"))
        } else {
            Cell::Heatmap(map, h, w, cmap)
        }
    }

    /// The map of a heatmap cell.
    fn map(&self) -> Option<&[f32]> {
        match self {
            Cell::Heatmap(v, ..) | Cell::Faint(v, ..) => Some(v),
            _ => None,
        }
    }

    /// The cell rendered at its own resolution: `(rgb, h, w)`, or `None` when there is
    /// nothing to draw. `scale`: the |value| drawn at full colour (None: the map's own).
    fn render(&self, scale: Option<f32>) -> Option<(Vec<u8>, usize, usize)> {
        let own = |v: &[f32], h: usize, w: usize| scale.unwrap_or_else(|| max_abs(v, h * w));
        match self {
            Cell::Input(v, h, w) if *h > 0 && *w > 0 => Some((grey_rgb(v, *h, *w), *h, *w)),
            Cell::Heatmap(v, h, w, cmap) if *h > 0 && *w > 0 => {
                Some((heatmap_rgb_scaled(v, *h, *w, *cmap, own(v, *h, *w)), *h, *w))
            }
            Cell::Faint(v, h, w, cmap, _) if *h > 0 && *w > 0 => {
                let rgb = heatmap_rgb_scaled(v, *h, *w, *cmap, own(v, *h, *w));
                // A quarter of the colour over light grey: visibly "not much here".
                let washed = rgb.iter().map(|&c| (c as u16 / 4 + 150) as u8).collect();
                Some((washed, *h, *w))
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
    pub(super) row_titles: Vec<String>,
    pub(super) column_titles: Vec<String>,
    pub(super) normalisation: Normalisation,
    /// `Some(colour map)`: draw the legend with this colour map's bar.
    pub(super) legend: Option<ColorMap>,
    pub(super) notes: Vec<String>,
}

impl Grid {
    /// An empty grid of `cell x cell`-pixel cells (`cell = 0` is taken as 1) separated by
    /// `pad` pixels.
    pub fn new(cell: usize, pad: usize) -> Self {
        Grid {
            cell: cell.max(1),
            pad,
            ..Grid::default()
        }
    }

    /// Titles drawn above the columns, left to right.
    pub fn column_titles<S: Into<String>>(
        &mut self,
        titles: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.column_titles = titles.into_iter().map(Into::into).collect();
        self
    }

    /// Appends a row of cells with a title drawn to its left.
    pub fn add_titled_row(&mut self, title: impl Into<String>, cells: Vec<Cell>) -> &mut Self {
        self.row_titles.resize(self.rows.len(), String::new());
        self.row_titles.push(title.into());
        self.add_row(cells)
    }

    /// How heatmaps are scaled (default: each by its own largest |value|).
    pub fn normalisation(&mut self, n: Normalisation) -> &mut Self {
        self.normalisation = n;
        self
    }

    /// Draws a legend under the grid: a colour bar of `cmap` from `-max |R|` to
    /// `+max |R|`, the normalisation used, a line on faint maps if there are any, and
    /// `notes` (one line each).
    pub fn legend<S: Into<String>>(
        &mut self,
        cmap: ColorMap,
        notes: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.legend = Some(cmap);
        self.notes = notes.into_iter().map(Into::into).collect();
        self
    }

    /// The scale each cell of row `r` is drawn at (`None`: the map's own).
    fn row_scale(&self, r: usize) -> Option<f32> {
        match self.normalisation {
            Normalisation::PerMap => None,
            Normalisation::PerRow => Some(
                self.rows[r]
                    .iter()
                    .filter_map(Cell::map)
                    .fold(0.0f32, |m, v| m.max(max_abs(v, v.len()))),
            ),
        }
    }

    /// Whether some cell is drawn faint.
    pub(super) fn has_faint(&self) -> bool {
        self.rows
            .iter()
            .flatten()
            .any(|c| matches!(c, Cell::Faint(..)))
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

    /// The size `(h, w)` in pixels of the cells alone: `k` cells take
    /// `k * cell + (k - 1) * pad`. Titles and the legend add margins (see
    /// [`Grid::size`]).
    pub(super) fn body_size(&self) -> (usize, usize) {
        let span = |k: usize| {
            if k == 0 {
                0
            } else {
                k * self.cell + (k - 1) * self.pad
            }
        };
        (span(self.rows()), span(self.columns()))
    }

    /// The cell side in pixels.
    pub(super) fn cell(&self) -> usize {
        self.cell
    }

    /// The gap between cells in pixels.
    pub(super) fn pad(&self) -> usize {
        self.pad
    }

    /// Draws the cells with the body's top-left corner at `at`, in an image `w` wide.
    pub(super) fn draw_body(&self, out: &mut [u8], w: usize, at: (usize, usize)) {
        let step = self.cell + self.pad;
        for (r, row) in self.rows.iter().enumerate() {
            let scale = self.row_scale(r);
            for (c, cell) in row.iter().enumerate() {
                let corner = (at.0 + r * step, at.1 + c * step);
                if let Some((rgb, ih, iw)) = cell.render(scale) {
                    self.blit(out, w, corner, &rgb, ih, iw);
                }
                if let Cell::Faint(.., note) = cell {
                    let s = (self.cell / 56).max(1);
                    let fits = self.cell.saturating_sub(4) / (6 * s);
                    let note: String = note.chars().take(fits).collect();
                    let left = corner.1 + (self.cell.saturating_sub(text_width(&note, s))) / 2;
                    let top = corner.0 + (self.cell.saturating_sub(GLYPH_H * s)) / 2;
                    draw_text(out, w, (top, left), &note, s, [40, 40, 40]);
                }
            }
        }
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
