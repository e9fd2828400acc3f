//! PNG files: atomic RGB writing and tolerant greyscale reading, with a typed error.

use png::{BitDepth, ColorType, Decoder, Encoder, Transformations};
use relprop_nn::io::{write_atomic, IoError};
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest width or height [`read_png_grey`] accepts: larger images are refused before
/// any pixel buffer is allocated.
pub const MAX_PNG_SIDE: u32 = 8192;

/// What went wrong reading, rendering or writing an image.
#[derive(Debug)]
pub enum HeatmapError {
    /// A file could not be written (or renamed into place).
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// The bytes are not a valid PNG (bad signature, checksum, truncated data, ...).
    Decode(String),
    /// The PNG encoder refused the image.
    Encode(String),
    /// The image is larger than [`MAX_PNG_SIDE`] on a side.
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A bad argument: pixel data that does not match the size, an empty image, ...
    Invalid(String),
}

impl fmt::Display for HeatmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeatmapError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            HeatmapError::Decode(m) => write!(f, "not a readable PNG: {m}"),
            HeatmapError::Encode(m) => write!(f, "PNG encoding failed: {m}"),
            HeatmapError::TooLarge { width, height } => write!(
                f,
                "the image is {width}x{height}, larger than the {MAX_PNG_SIDE}x{MAX_PNG_SIDE} limit"
            ),
            HeatmapError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HeatmapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeatmapError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Encodes `h x w` RGB bytes (row-major, 3 per pixel) as an 8-bit RGB PNG in memory.
/// Errors when `rgb.len() != h * w * 3` or the image is empty.
pub fn png_rgb_bytes(rgb: &[u8], h: usize, w: usize) -> Result<Vec<u8>, HeatmapError> {
    let (Ok(height), Ok(width)) = (u32::try_from(h), u32::try_from(w)) else {
        return Err(HeatmapError::Invalid(format!(
            "a {h}x{w} image is too large for PNG"
        )));
    };
    if h == 0 || w == 0 {
        return Err(HeatmapError::Invalid(format!(
            "cannot write an empty {h}x{w} image"
        )));
    }
    if h.checked_mul(w).and_then(|n| n.checked_mul(3)) != Some(rgb.len()) {
        return Err(HeatmapError::Invalid(format!(
            "a {h}x{w} RGB image needs {} bytes, not {}",
            h.saturating_mul(w).saturating_mul(3),
            rgb.len()
        )));
    }
    let mut out = Vec::new();
    let encode = |e: png::EncodingError| HeatmapError::Encode(e.to_string());
    let mut encoder = Encoder::new(&mut out, width, height);
    encoder.set_color(ColorType::Rgb);
    encoder.set_depth(BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(rgb).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

/// Writes `h x w` RGB bytes as an 8-bit RGB PNG through relprop's one output path
/// (`relprop_nn::io::write_atomic`: staged beside the target, then moved into place, so a
/// reader never sees a half-written file). Errors as [`png_rgb_bytes`], or when the file
/// cannot be written.
pub fn write_png_rgb(path: &Path, rgb: &[u8], h: usize, w: usize) -> Result<(), HeatmapError> {
    let bytes = png_rgb_bytes(rgb, h, w)?;
    write_atomic(path, &bytes).map_err(HeatmapError::from)
}

impl From<IoError> for HeatmapError {
    fn from(e: IoError) -> Self {
        match e {
            IoError::Io {
                path,
                kind,
                message,
            } => HeatmapError::Io {
                path,
                source: std::io::Error::new(kind, message),
            },
            other => HeatmapError::Invalid(other.to_string()),
        }
    }
}

/// Decodes a PNG into grey values in `[0, 1]`, row-major, with its height and width.
///
/// 1-, 2-, 4-, 8- and 16-bit grey, grey with alpha, palette, RGB and RGBA images are read;
/// colour is converted to luminance `0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601, as PIL's
/// `convert("L")`) and alpha is ignored. An 8-bit grey value `k` reads as exactly
/// `k as f32 / 255.0`. Images over [`MAX_PNG_SIDE`] on a side are refused after reading the
/// header, before the pixel buffer is allocated. Any malformed byte string is an error,
/// never a panic.
pub fn read_png_grey(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), HeatmapError> {
    read_png(bytes, 1)
}

/// Decodes a PNG into RGB planes `[3, h, w]` in `[0, 1]` (row-major per plane) with its
/// height and width: the input of a colour model. Grey images give three equal planes;
/// alpha is ignored; everything else as [`read_png_grey`].
pub fn read_png_rgb(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), HeatmapError> {
    read_png(bytes, 3)
}

/// A PNG's `(height, width)` from its header, without decoding any pixel: check it
/// against what you need before paying for a decode.
pub fn png_dimensions(bytes: &[u8]) -> Result<(usize, usize), HeatmapError> {
    check_palette(bytes)?;
    let mut decoder = Decoder::new(bytes);
    let header = decoder
        .read_header_info()
        .map_err(|e| HeatmapError::Decode(e.to_string()))?;
    Ok((header.height as usize, header.width as usize))
}

/// The decoder behind [`read_png_grey`] (`planes` = 1) and [`read_png_rgb`] (3).
fn read_png(bytes: &[u8], planes: usize) -> Result<(Vec<f32>, usize, usize), HeatmapError> {
    let decode = |e: png::DecodingError| HeatmapError::Decode(e.to_string());
    check_palette(bytes)?;
    let mut decoder = Decoder::new(bytes);
    // Palette to RGB(A), low bit depths to 8 bits, tRNS to alpha: four layouts remain.
    decoder.set_transformations(Transformations::EXPAND);
    let header = decoder.read_header_info().map_err(decode)?;
    let (width, height) = (header.width, header.height);
    if width > MAX_PNG_SIDE || height > MAX_PNG_SIDE {
        return Err(HeatmapError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(HeatmapError::Decode(format!(
            "the header declares an empty {width}x{height} image"
        )));
    }
    let mut reader = decoder.read_info().map_err(decode)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(decode)?;
    let (h, w) = (info.height as usize, info.width as usize);
    let data = buf.get(..info.buffer_size()).ok_or_else(|| {
        HeatmapError::Decode("the decoder reported more data than it wrote".into())
    })?;
    let channels = match info.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => {
            return Err(HeatmapError::Decode("the palette was not expanded".into()))
        }
    };
    let bytes_per_sample = match info.bit_depth {
        BitDepth::Eight => 1,
        BitDepth::Sixteen => 2,
        other => {
            return Err(HeatmapError::Decode(format!(
                "unexpected bit depth {other:?} after expansion"
            )))
        }
    };
    let sample = |px: &[u8], k: usize| -> f32 {
        if bytes_per_sample == 1 {
            px[k] as f32 / 255.0
        } else {
            u16::from_be_bytes([px[2 * k], px[2 * k + 1]]) as f32 / 65535.0
        }
    };
    let stride = channels * bytes_per_sample;
    if w == 0 || info.line_size < w * stride || data.len() < h * info.line_size {
        return Err(HeatmapError::Decode(
            "the decoded frame is too short".into(),
        ));
    }
    let mut out = vec![0.0f32; planes * h * w];
    for (y, row) in data.chunks_exact(info.line_size).take(h).enumerate() {
        for (x, px) in row[..w * stride].chunks_exact(stride).enumerate() {
            let at = y * w + x;
            let rgb = if channels < 3 {
                let v = sample(px, 0);
                [v, v, v]
            } else {
                [sample(px, 0), sample(px, 1), sample(px, 2)]
            };
            if planes == 1 && channels < 3 {
                out[at] = rgb[0]; // a grey value reads exactly as stored
            } else if planes == 1 {
                let [r, g, b] = rgb;
                out[at] = (0.299 * r + 0.587 * g + 0.114 * b).clamp(0.0, 1.0);
            } else {
                for (c, v) in rgb.into_iter().enumerate() {
                    out[c * h * w + at] = v;
                }
            }
        }
    }
    Ok((out, h, w))
}

/// Walks the chunks before the image data and rejects a palette (PLTE) whose length is not
/// a whole number of RGB entries (at most 256): the png crate panics on such a palette.
fn check_palette(bytes: &[u8]) -> Result<(), HeatmapError> {
    let mut at = 8; // past the signature, which the decoder checks itself
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if len == 0 || !len.is_multiple_of(3) || len > 3 * 256 => {
                return Err(HeatmapError::Decode(format!(
                    "the palette has {len} bytes, not 3 per entry"
                )));
            }
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}
