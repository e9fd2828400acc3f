//! Figures that explain themselves: titles, a colour bar, the normalisation, and faint
//! maps for near-zero relevance.

use relprop_explain::heatmap::{
    heatmap_rgb_scaled, Cell, ColorMap, Grid, Normalisation, NEAR_ZERO_SEED,
};

fn pixel(rgb: &[u8], w: usize, y: usize, x: usize) -> [u8; 3] {
    let i = (y * w + x) * 3;
    [rgb[i], rgb[i + 1], rgb[i + 2]]
}

fn dark_pixels(
    rgb: &[u8],
    w: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> usize {
    rows.flat_map(|y| cols.clone().map(move |x| (y, x)))
        .filter(|&(y, x)| pixel(rgb, w, y, x).iter().all(|&c| c < 60))
        .count()
}

#[test]
fn titles_and_legend_add_margins_with_ink_in_them() {
    let cells = || {
        vec![
            Cell::Input(vec![0.5; 4], 2, 2),
            Cell::Heatmap(vec![-1.0, 0.0, 0.5, 1.0], 2, 2, ColorMap::Bwr),
        ]
    };
    let mut plain = Grid::new(56, 4);
    plain.add_row(cells());
    let mut titled = Grid::new(56, 4);
    titled.column_titles(["input", "map"]);
    titled.add_titled_row("digit 7", cells());
    titled.legend(ColorMap::Bwr, ["red: for, blue: against"]);
    let (ph, pw) = plain.size();
    let (rgb, h, w) = titled.to_rgb();
    assert_eq!((ph, pw), (56, 116));
    assert!(h > ph && w > pw, "{h}x{w}");
    // The row title sits left of the cells, the column titles above them.
    let left = w - pw;
    let top = 7 + 2 * 3;
    assert!(dark_pixels(&rgb, w, top..top + 56, 0..left) > 10);
    assert!(dark_pixels(&rgb, w, 0..top, left..w) > 10);
    // The colour bar: full blue at its left end, full red at its right end, white mid-way.
    let bar_y = top + 56 + 3 + 2;
    assert_eq!(pixel(&rgb, w, bar_y, 3), ColorMap::Bwr.rgb(-1.0));
    let bar_w = (w - 6).min(256);
    assert_eq!(pixel(&rgb, w, bar_y, 3 + bar_w - 1), ColorMap::Bwr.rgb(1.0));
    // Legend text (normalisation and the note) below the bar.
    assert!(dark_pixels(&rgb, w, bar_y + 8..h, 0..w) > 40);
}

#[test]
fn per_row_normalisation_shares_one_scale() {
    let weak = vec![0.5f32; 4];
    let strong = vec![1.0f32; 4];
    let mut grid = Grid::new(2, 0);
    grid.normalisation(Normalisation::PerRow);
    grid.add_row(vec![
        Cell::Heatmap(weak.clone(), 2, 2, ColorMap::Bwr),
        Cell::Heatmap(strong, 2, 2, ColorMap::Bwr),
    ]);
    let (rgb, _, w) = grid.to_rgb();
    // The weak map is drawn at half strength, not stretched to full colour.
    assert_eq!(pixel(&rgb, w, 0, 0), ColorMap::Bwr.rgb(0.5));
    assert_eq!(pixel(&rgb, w, 0, 2), ColorMap::Bwr.rgb(1.0));
    let mut own = Grid::new(2, 0);
    own.add_row(vec![Cell::Heatmap(weak, 2, 2, ColorMap::Bwr)]);
    let (rgb, _, w) = own.to_rgb();
    assert_eq!(pixel(&rgb, w, 0, 0), ColorMap::Bwr.rgb(1.0));
    assert_eq!(
        &heatmap_rgb_scaled(&[2.0], 1, 1, ColorMap::Bwr, 1.0),
        &ColorMap::Bwr.rgb(1.0)
    );
}

#[test]
fn near_zero_maps_are_drawn_faint_with_a_note() {
    let map = vec![-1e-8f32; 56 * 56];
    let faint = Cell::relevance(map.clone(), 56, 56, ColorMap::Bwr, 2e-8);
    assert!(matches!(faint, Cell::Faint(..)));
    assert!(matches!(
        Cell::relevance(map.clone(), 56, 56, ColorMap::Bwr, NEAR_ZERO_SEED * 10.0),
        Cell::Heatmap(..)
    ));
    let mut grid = Grid::new(56, 0);
    grid.add_row(vec![faint]);
    grid.legend(ColorMap::Bwr, Vec::<String>::new());
    let (rgb, h, w) = grid.to_rgb();
    // No full-strength blue: every channel of the cell's corner is washed towards grey.
    let corner = pixel(&rgb, w, 0, 0);
    assert!(corner.iter().all(|&c| c >= 150), "{corner:?}");
    assert_ne!(corner, ColorMap::Bwr.rgb(-1.0));
    // The note is written across the cell, and the legend says what grey means.
    assert!(dark_pixels(&rgb, w, 0..56, 0..56) > 10);
    let full = {
        let mut g = Grid::new(56, 0);
        g.add_row(vec![Cell::Heatmap(vec![1.0; 4], 2, 2, ColorMap::Bwr)]);
        g.legend(ColorMap::Bwr, Vec::<String>::new());
        g.size()
    };
    assert!(h > full.0, "the faint-map line adds a legend row");
}
