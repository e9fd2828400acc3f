//! Photos as model inputs: decoding PNG and JPEG within limits, ImageNet's resize and
//! centre crop, and a few bundled public-domain photos (see `zoo/data/photos/LICENSES.md`).
//!
//! The preprocessing is EfficientNet's evaluation transform: scale so that the shorter
//! side is 256 pixels (bicubic, Catmull-Rom), then cut the central 224x224 square. The
//! result is `[3, 224, 224]` RGB in [0, 1], what `efficientnet_lite0` takes.

use image::{imageops, DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Shorter side after resizing.
pub const RESIZE: usize = 256;
/// Side of the centre crop.
pub const CROP: usize = 224;
/// Largest image decoded, in pixels per side: a declared size past it is refused before
/// any pixel is decoded.
pub const MAX_SIDE: u32 = 8192;
/// Most bytes the decoder may allocate (a 8192x8192 RGBA image and some slack).
const MAX_ALLOC: u64 = 320 << 20;

/// A bundled photo: its name, the encoded JPEG, and the object in it.
#[derive(Clone, Copy, Debug)]
pub struct Photo {
    /// Short name (`coffee`).
    pub name: &'static str,
    /// JPEG bytes.
    pub jpeg: &'static [u8],
    /// What the photo shows.
    pub subject: &'static str,
}

/// The bundled photos (from scikit-image's data folder; public domain or CC0).
pub const PHOTOS: [Photo; 4] = [
    Photo {
        name: "coffee",
        jpeg: include_bytes!("../data/photos/coffee.jpg"),
        subject: "a cup of espresso",
    },
    Photo {
        name: "chelsea",
        jpeg: include_bytes!("../data/photos/chelsea.jpg"),
        subject: "a tabby cat",
    },
    Photo {
        name: "rocket",
        jpeg: include_bytes!("../data/photos/rocket.jpg"),
        subject: "a rocket launch",
    },
    Photo {
        name: "astronaut",
        jpeg: include_bytes!("../data/photos/astronaut.jpg"),
        subject: "an astronaut in a space suit",
    },
];

/// Why an image could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoError(pub String);

impl std::fmt::Display for PhotoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PhotoError {}

/// Whether the bytes start like a PNG or a JPEG.
pub fn is_photo(bytes: &[u8]) -> bool {
    matches!(
        image::guess_format(bytes),
        Ok(ImageFormat::Png | ImageFormat::Jpeg)
    )
}

/// Decodes a PNG or JPEG to 8-bit RGB (grey is repeated, alpha dropped). The declared
/// size is checked against [`MAX_SIDE`] before decoding, and the decoder's allocations
/// are capped.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, PhotoError> {
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err(PhotoError("not a PNG or JPEG image".into())),
    };
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| PhotoError(format!("cannot read the image header: {e}")))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(PhotoError(format!(
            "the image is {w}x{h} pixels; at most {MAX_SIDE} per side and at least 1 are accepted"
        )));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image: DynamicImage = reader
        .decode()
        .map_err(|e| PhotoError(format!("cannot decode the image: {e}")))?;
    Ok(image.to_rgb8())
}

/// Scales so the shorter side is `short` pixels (bicubic), then cuts the central
/// `crop` x `crop` square; `[3, crop, crop]` values in [0, 1], channel-major.
pub fn resize_crop(image: &RgbImage, short: usize, crop: usize) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    // The longer side keeps the aspect ratio, rounded down as torchvision does.
    let (nw, nh) = if w <= h {
        (short, (short * h / w).max(short))
    } else {
        ((short * w / h).max(short), short)
    };
    let resized = imageops::resize(
        image,
        nw as u32,
        nh as u32,
        imageops::FilterType::CatmullRom,
    );
    let (left, top) = ((nw - crop.min(nw)) / 2, (nh - crop.min(nh)) / 2);
    let mut out = vec![0.0f32; 3 * crop * crop];
    for y in 0..crop.min(nh) {
        for x in 0..crop.min(nw) {
            let p = resized.get_pixel((left + x) as u32, (top + y) as u32);
            for c in 0..3 {
                out[(c * crop + y) * crop + x] = f32::from(p[c]) / 255.0;
            }
        }
    }
    out
}

/// A photo file's bytes as the model input `[3, 224, 224]`.
pub fn prepare(bytes: &[u8]) -> Result<Vec<f32>, PhotoError> {
    Ok(resize_crop(&decode_rgb(bytes)?, RESIZE, CROP))
}

/// Two prepared `[3, s, s]` images side by side: `[3, s, 2 s]`, `left` on the left.
pub fn side_by_side(left: &[f32], right: &[f32], side: usize) -> Vec<f32> {
    let mut out = vec![0.0; 3 * side * 2 * side];
    for c in 0..3 {
        for y in 0..side {
            let row = (c * side + y) * side;
            let to = (c * side + y) * 2 * side;
            out[to..to + side].copy_from_slice(&left[row..row + side]);
            out[to + side..to + 2 * side].copy_from_slice(&right[row..row + side]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_photos_decode_to_224_squares_in_the_unit_range() {
        for p in PHOTOS {
            let x = prepare(p.jpeg).unwrap();
            assert_eq!(x.len(), 3 * CROP * CROP, "{}", p.name);
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)), "{}", p.name);
            // A photo, not a flat colour: the channels vary.
            let mean = x.iter().sum::<f32>() / x.len() as f32;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
            assert!(var > 0.005, "{}: variance {var}", p.name);
        }
    }

    #[test]
    fn resize_keeps_the_aspect_ratio_and_crops_the_centre() {
        // A 40x20 image: left half black, right half white; scaled to 8 high (16 wide)
        // and cropped to the central 8x8, the crop's left half is dark, right half light.
        let img = RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let x = resize_crop(&img, 8, 8);
        assert_eq!(x.len(), 3 * 64);
        assert!(x[8 * 4] < 0.1 && x[8 * 4 + 7] > 0.9);
    }

    #[test]
    fn oversized_and_foreign_images_are_refused_before_decoding() {
        assert!(decode_rgb(b"GIF89a....").is_err());
        // A real PNG of 100000 x 1 pixels: refused by its declared size.
        let mut png = Vec::new();
        let wide = RgbImage::new(100_000, 1);
        wide.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let err = decode_rgb(&png).unwrap_err().to_string();
        assert!(err.contains("100000x1"), "{err}");
    }

    #[test]
    fn side_by_side_puts_left_then_right_on_each_row() {
        let (l, r) = (vec![1.0; 3 * 4], vec![2.0; 3 * 4]);
        let both = side_by_side(&l, &r, 2);
        assert_eq!(&both[..4], &[1.0, 1.0, 2.0, 2.0]);
        assert_eq!(both.len(), 24);
    }
}
