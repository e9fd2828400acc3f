//! Occlusion (Zeiler and Fergus 2014): the drop in the target logit when a window is zeroed.

use super::{stacked_shape, target_logits, Batch};
use relprop_core::{Error, Result, Tensor};
use relprop_nn::Module;

const OP: &str = "occlusion";

/// Slides a `window x window` patch of zeros (over all channels) across each image with the
/// given `stride`, plus a last window flush with the bottom and right borders so every pixel
/// is covered. A pixel's relevance is the mean, over the windows covering it, of
/// `logit_t(x) - logit_t(x with the window zeroed)`; it is the same in every channel.
///
/// Occluded copies are stacked and run through the model in chunks (forward passes only).
/// Errors when `window` is 0 or larger than the image, `stride` is 0 or larger than
/// `window` (pixels between windows would never be occluded), or the input is not
/// `[n, c, h, w]` with one target per sample.
pub fn occlusion(
    model: &dyn Module,
    x: &Tensor,
    t: &[usize],
    window: usize,
    stride: usize,
) -> Result<Tensor> {
    let batch = Batch::check_images(OP, x, t)?;
    let (c, h, w) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    if window == 0 || window > h || window > w {
        return Err(Error::invalid(
            OP,
            format!("the window must be between 1 and the image side ({h}x{w}), not {window}"),
        ));
    }
    if stride == 0 || stride > window {
        return Err(Error::invalid(
            OP,
            format!(
                "the stride must be between 1 and the window ({window}), not {stride}, \
                 or some pixels are never occluded"
            ),
        ));
    }
    let windows: Vec<(usize, usize)> = offsets(h, window, stride)
        .into_iter()
        .flat_map(|y| {
            offsets(w, window, stride)
                .into_iter()
                .map(move |xo| (y, xo))
        })
        .collect();
    // How many windows cover each pixel: the same for every image.
    let mut cover = vec![0u32; h * w];
    for &(y0, x0) in &windows {
        for y in y0..y0 + window {
            for k in &mut cover[y * w + x0..y * w + x0 + window] {
                *k += 1;
            }
        }
    }

    let base = target_logits(OP, model, x.clone(), t)?;
    let per = batch.per;
    let rows = batch.n * windows.len();
    let chunk = batch.chunk_rows();
    let mut acc = vec![0.0f64; batch.n * h * w];
    let mut start = 0;
    while start < rows {
        let len = chunk.min(rows - start);
        let mut data = Vec::with_capacity(len * per);
        let mut targets = Vec::with_capacity(len);
        for row in start..start + len {
            let (i, (y0, x0)) = (row / windows.len(), windows[row % windows.len()]);
            let from = data.len();
            data.extend_from_slice(&x.data()[i * per..(i + 1) * per]);
            let img = &mut data[from..];
            for ch in 0..c {
                for y in y0..y0 + window {
                    let at = (ch * h + y) * w + x0;
                    img[at..at + window].fill(0.0);
                }
            }
            targets.push(t[i]);
        }
        let stacked = Tensor::from_vec(data, &stacked_shape(x, len))?;
        let occluded = target_logits(OP, model, stacked, &targets)?;
        for (row, z) in (start..start + len).zip(occluded) {
            let (i, (y0, x0)) = (row / windows.len(), windows[row % windows.len()]);
            let drop = base[i] as f64 - z as f64;
            let map = &mut acc[i * h * w..(i + 1) * h * w];
            for y in y0..y0 + window {
                for a in &mut map[y * w + x0..y * w + x0 + window] {
                    *a += drop;
                }
            }
        }
        start += len;
    }

    let mut out = Vec::with_capacity(x.numel());
    for map in acc.chunks(h * w) {
        let mean: Vec<f32> = map
            .iter()
            .zip(&cover)
            .map(|(&a, &k)| (a / k.max(1) as f64) as f32)
            .collect();
        for _ in 0..c {
            out.extend_from_slice(&mean);
        }
    }
    Tensor::from_vec(out, x.shape())
}

/// Window offsets along a side of length `len`: `0, stride, 2 stride, ...` while the window
/// fits, then one flush with the far border if the last one is not.
fn offsets(len: usize, window: usize, stride: usize) -> Vec<usize> {
    let last = len - window;
    let mut v: Vec<usize> = (0..=last).step_by(stride).collect();
    if v.last() != Some(&last) {
        v.push(last);
    }
    v
}
