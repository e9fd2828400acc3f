//! Diverging colour maps for signed relevance, centred at 0.
//!
//! Each map is piecewise linear between a few RGB nodes placed on `[-1, 1]`:
//!
//! - `bwr`: blue `(0,0,1)` at -1, white at 0, red `(1,0,0)` at +1;
//! - `seismic`: `(0,0,0.3)` at -1, blue at -0.5, white at 0, red at 0.5, `(0.5,0,0)` at +1;
//! - `coldnhot`: cyan `(0,1,1)` at -1, blue at -0.5, black at 0, red at 1/3, yellow at 2/3,
//!   white at +1;
//! - `gray`: black at -1, mid-grey at 0, white at +1.
//!
//! `bwr` and `seismic` are matplotlib's definitions. `coldnhot` follows Zennit's colour-map
//! source `0ff,00f,80:000,f00,ff0,fff`: cyan, blue, black at the centre, then red, yellow and
//! white spread evenly over the positive half (Zennit puts them at palette indices 170 and
//! 212 of 255, i.e. 0.33 and 0.66; we use exactly 1/3 and 2/3 and put black exactly at 0).

/// A colour map for values in `[-1, 1]`, with 0 at the centre colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColorMap {
    /// matplotlib `bwr`: blue, white, red.
    Bwr,
    /// matplotlib `seismic`: dark blue, blue, white, red, dark red.
    Seismic,
    /// Zennit `coldnhot`: cyan, blue, black, red, yellow, white.
    ColdNHot,
    /// Grey levels: black, mid-grey, white.
    Gray,
}

/// The names [`ColorMap::from_name`] accepts, in declaration order.
pub const COLORMAP_NAMES: [&str; 4] = ["bwr", "seismic", "coldnhot", "gray"];

/// Nodes `(position in [-1, 1], rgb in [0, 1])`, ascending in position.
type Nodes = &'static [(f32, [f32; 3])];

const BWR: Nodes = &[
    (-1.0, [0.0, 0.0, 1.0]),
    (0.0, [1.0, 1.0, 1.0]),
    (1.0, [1.0, 0.0, 0.0]),
];
const SEISMIC: Nodes = &[
    (-1.0, [0.0, 0.0, 0.3]),
    (-0.5, [0.0, 0.0, 1.0]),
    (0.0, [1.0, 1.0, 1.0]),
    (0.5, [1.0, 0.0, 0.0]),
    (1.0, [0.5, 0.0, 0.0]),
];
const COLDNHOT: Nodes = &[
    (-1.0, [0.0, 1.0, 1.0]),
    (-0.5, [0.0, 0.0, 1.0]),
    (0.0, [0.0, 0.0, 0.0]),
    (1.0 / 3.0, [1.0, 0.0, 0.0]),
    (2.0 / 3.0, [1.0, 1.0, 0.0]),
    (1.0, [1.0, 1.0, 1.0]),
];
const GRAY: Nodes = &[(-1.0, [0.0, 0.0, 0.0]), (1.0, [1.0, 1.0, 1.0])];

impl ColorMap {
    /// Every colour map, in declaration order.
    pub const ALL: [ColorMap; 4] = [
        ColorMap::Bwr,
        ColorMap::Seismic,
        ColorMap::ColdNHot,
        ColorMap::Gray,
    ];

    /// Looks a map up by name: `bwr`, `seismic`, `coldnhot` or `gray` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        COLORMAP_NAMES
            .iter()
            .position(|&n| n == name)
            .map(|i| ColorMap::ALL[i])
    }

    /// The map's name, as accepted by [`ColorMap::from_name`].
    pub fn name(self) -> &'static str {
        COLORMAP_NAMES[self as usize]
    }

    /// The colour of `v`, clamped to `[-1, 1]`; NaN is drawn as the centre colour.
    pub fn rgb(&self, v: f32) -> [u8; 3] {
        let v = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
        let nodes = self.nodes();
        // The segment holding v: the first node at or beyond it closes the segment.
        let hi = nodes
            .iter()
            .position(|&(p, _)| p >= v)
            .unwrap_or(nodes.len() - 1)
            .max(1);
        let ((p0, c0), (p1, c1)) = (nodes[hi - 1], nodes[hi]);
        let a = ((v - p0) / (p1 - p0)).clamp(0.0, 1.0);
        let mix = |k: usize| to_u8(c0[k] + (c1[k] - c0[k]) * a);
        [mix(0), mix(1), mix(2)]
    }

    /// The colour at the centre (value 0).
    pub fn centre(&self) -> [u8; 3] {
        self.rgb(0.0)
    }

    fn nodes(&self) -> Nodes {
        match self {
            ColorMap::Bwr => BWR,
            ColorMap::Seismic => SEISMIC,
            ColorMap::ColdNHot => COLDNHOT,
            ColorMap::Gray => GRAY,
        }
    }
}

impl std::fmt::Display for ColorMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A channel intensity in `[0, 1]` as a byte, rounded to nearest.
pub(crate) fn to_u8(c: f32) -> u8 {
    (c.clamp(0.0, 1.0) * 255.0).round() as u8
}
