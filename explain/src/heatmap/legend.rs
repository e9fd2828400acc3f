//! A grid's decorations: row and column titles, and the legend under it (a colour bar from
//! `-max |R|` through 0 to `+max |R|`, the normalisation used, a line on faint maps, and
//! the caller's notes), so a figure says what it shows.

use super::font::{draw_text, text_width, HEIGHT as GLYPH_H};
use super::grid::Grid;

const INK: [u8; 3] = [0, 0, 0];

/// Where everything goes, in pixels.
struct Layout {
    /// Text scale of titles and legend (font pixels per glyph pixel).
    s: usize,
    col_s: usize,
    row_s: usize,
    legend_s: usize,
    margin: usize,
    left: usize,
    top: usize,
    body: (usize, usize),
    legend_lines: Vec<String>,
    legend_h: usize,
    w: usize,
}

impl Layout {
    fn h(&self) -> usize {
        self.top + self.body.0 + self.legend_h
    }

    fn line_h(&self) -> usize {
        GLYPH_H * self.legend_s + 2 * self.legend_s
    }

    fn bar_h(&self) -> usize {
        8 * self.legend_s
    }
}

/// The largest of `scales` at which every text fits `room` pixels (else 1).
fn fitting_scale<'a>(
    texts: impl Iterator<Item = &'a String> + Clone,
    room: usize,
    scales: &[usize],
) -> usize {
    scales
        .iter()
        .copied()
        .find(|&s| texts.clone().all(|t| text_width(t, s) <= room))
        .unwrap_or(1)
}

impl Grid {
    fn layout(&self) -> Layout {
        let s = (self.cell() / 56).max(1);
        let margin = 3 * s;
        let body = self.body_size();
        let col_s = fitting_scale(self.column_titles.iter(), self.cell(), &[s, 1]);
        let top = if self.column_titles.iter().any(|t| !t.is_empty()) {
            GLYPH_H * col_s + 2 * margin
        } else {
            0
        };
        let row_s = fitting_scale(self.row_titles.iter(), 2 * self.cell(), &[s, 1]);
        let widest_row = self.row_titles.iter().map(|t| text_width(t, row_s)).max();
        let left = match widest_row {
            Some(wd) if wd > 0 => wd + 2 * margin,
            _ => 0,
        };
        let mut legend_lines = Vec::new();
        if self.legend.is_some() {
            legend_lines.push(self.normalisation.describe().to_string());
            if self.has_faint() {
                legend_lines.push("grey, ~0: total relevance near 0 (saturated softmax)".into());
            }
            legend_lines.extend(self.notes.iter().cloned());
        }
        let mut w = left + body.1;
        let legend_s = fitting_scale(legend_lines.iter(), w.saturating_sub(2 * margin), &[s, 1]);
        let widest = legend_lines
            .iter()
            .map(|t| text_width(t, legend_s))
            .max()
            .unwrap_or(0);
        let mut layout = Layout {
            s,
            col_s,
            row_s,
            legend_s,
            margin,
            left,
            top,
            body,
            legend_lines,
            legend_h: 0,
            w: 0,
        };
        if self.legend.is_some() {
            w = w.max(widest + 2 * margin).max(64);
            layout.legend_h = margin
                + layout.bar_h()
                + margin
                + layout.line_h()
                + margin
                + layout.legend_lines.len() * layout.line_h()
                + margin;
        }
        layout.w = w;
        layout
    }

    /// The rendered size `(h, w)` in pixels. Without titles or legend: `k` cells take
    /// `k * cell + (k - 1) * pad` each way; titles and the legend add margins.
    pub fn size(&self) -> (usize, usize) {
        let l = self.layout();
        (l.h(), l.w)
    }

    /// Renders the grid: `(rgb bytes, h, w)`, row-major with 3 bytes per pixel.
    pub fn to_rgb(&self) -> (Vec<u8>, usize, usize) {
        let l = self.layout();
        let (h, w) = (l.h(), l.w);
        let mut out = vec![255u8; h * w * 3];
        if h == 0 || w == 0 {
            return (Vec::new(), 0, 0);
        }
        self.draw_body(&mut out, w, (l.top, l.left));
        let step = self.cell() + self.pad();
        for (c, title) in self.column_titles.iter().enumerate() {
            let x = l.left + c * step + self.cell().saturating_sub(text_width(title, l.col_s)) / 2;
            draw_text(&mut out, w, (l.margin, x), title, l.col_s, INK);
        }
        for (r, title) in self.row_titles.iter().enumerate() {
            let y = l.top + r * step + self.cell().saturating_sub(GLYPH_H * l.row_s) / 2;
            draw_text(&mut out, w, (y, l.margin), title, l.row_s, INK);
        }
        if let Some(cmap) = self.legend {
            self.draw_legend(&mut out, &l, cmap);
        }
        (out, h, w)
    }

    fn draw_legend(&self, out: &mut [u8], l: &Layout, cmap: super::ColorMap) {
        let w = l.w;
        let (ls, m) = (l.legend_s, l.margin);
        let top = l.top + l.body.0 + m;
        // The bar: -1 at the left, 0 in the middle, +1 at the right.
        let bar_w = (w - 2 * m).min(256 * l.s);
        let left = m;
        for x in 0..bar_w {
            let v = 2.0 * x as f32 / (bar_w - 1).max(1) as f32 - 1.0;
            let rgb = cmap.rgb(v);
            for y in top..top + l.bar_h() {
                out[(y * w + left + x) * 3..(y * w + left + x) * 3 + 3].copy_from_slice(&rgb);
            }
        }
        let labels_y = top + l.bar_h() + m;
        let (neg, zero, pos) = ("-max|R|", "0", "+max|R|");
        draw_text(out, w, (labels_y, left), neg, ls, INK);
        let mid = left + bar_w / 2 - text_width(zero, ls) / 2;
        draw_text(out, w, (labels_y, mid), zero, ls, INK);
        let right = (left + bar_w).saturating_sub(text_width(pos, ls));
        draw_text(out, w, (labels_y, right), pos, ls, INK);
        let mut y = labels_y + l.line_h() + m;
        for line in &l.legend_lines {
            draw_text(out, w, (y, left), line, ls, INK);
            y += l.line_h();
        }
    }
}
