//! Grad-CAM (Selvaraju et al. 2017) at a labelled conv activation, upsampled to the input.

use super::{gradient_walk, Batch};
use relprop_core::{Error, NodeId, Op, Result, Tape, Tensor};
use relprop_nn::Module;

const OP: &str = "grad-cam";

/// Grad-CAM at the node labelled `layer` (default: the last `conv2d` node on the tape).
///
/// With `A` that node's output `[n, k, h', w']` and `w_k` the spatial mean of the target
/// logit's gradient with respect to channel `k`, the map is `relu(sum_k w_k A_k)`, upsampled
/// bilinearly (half-pixel centres, as `F.interpolate(..., mode="bilinear",
/// align_corners=False)`) to the input's `H x W` and repeated over the input channels. It is
/// non-negative. Errors name the layer when no node carries the label or its value is not a
/// 4-D activation of the batch.
pub fn grad_cam(
    model: &dyn Module,
    x: &Tensor,
    t: &[usize],
    layer: Option<&str>,
) -> Result<Tensor> {
    let batch = Batch::check_images(OP, x, t)?;
    let walk = gradient_walk(OP, model, x.clone(), t)?;
    let tape = &walk.tape;
    let (node, name) = find_layer(tape, layer)?;
    let a = tape.value(node)?;
    let (k, h, w) = match *a.shape() {
        [n, k, h, w] if n == batch.n && h > 0 && w > 0 => (k, h, w),
        _ => {
            return Err(Error::shape(
                OP,
                &[a.shape(), x.shape()],
                format!("layer '{name}' is not a 4-D activation [n, channels, h, w] of the batch"),
            ))
        }
    };
    let g = walk.signals.get_or_zeros(tape, node)?;
    let (c_in, out_h, out_w) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let plane = h * w;
    let mut out = Vec::with_capacity(x.numel());
    for i in 0..batch.n {
        let ai = &a.data()[i * k * plane..(i + 1) * k * plane];
        let gi = &g.data()[i * k * plane..(i + 1) * k * plane];
        let mut cam = vec![0.0f64; plane];
        for (ac, gc) in ai.chunks(plane).zip(gi.chunks(plane)) {
            let weight = gc.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
            for (m, &v) in cam.iter_mut().zip(ac) {
                *m += weight * v as f64;
            }
        }
        let cam: Vec<f32> = cam.into_iter().map(|v| v.max(0.0) as f32).collect();
        let up = upsample_bilinear(&cam, h, w, out_h, out_w);
        for _ in 0..c_in {
            out.extend_from_slice(&up);
        }
    }
    Tensor::from_vec(out, x.shape())
}

/// The node to explain and its display name.
fn find_layer<'a>(tape: &'a Tape, layer: Option<&'a str>) -> Result<(NodeId, &'a str)> {
    let conv_labels = || {
        let labels: Vec<&str> = tape
            .nodes()
            .iter()
            .filter(|n| matches!(n.op, Op::Conv2d { .. }))
            .filter_map(|n| n.label.as_deref())
            .collect();
        if labels.is_empty() {
            "none".to_string()
        } else {
            labels.join(", ")
        }
    };
    match layer {
        Some(name) => {
            let id = tape.find(name).ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!(
                        "no layer is labelled '{name}' (conv layers on the tape: {})",
                        conv_labels()
                    ),
                )
            })?;
            if matches!(tape.node(id)?.op, Op::Leaf { .. }) {
                return Err(Error::invalid(
                    OP,
                    format!("'{name}' is a parameter or input, not a layer's activation"),
                ));
            }
            Ok((id, name))
        }
        None => {
            let id = tape
                .nodes()
                .iter()
                .rposition(|n| matches!(n.op, Op::Conv2d { .. }))
                .ok_or_else(|| {
                    Error::invalid(OP, "the model has no conv2d layer; name a layer explicitly")
                })?;
            Ok((id, tape.node(id)?.label.as_deref().unwrap_or("conv2d")))
        }
    }
}

/// Bilinear resize of one `h x w` plane to `out_h x out_w`, with PyTorch's
/// `align_corners=False` source coordinates: `src = (dst + 0.5) * in / out - 0.5`, clamped
/// below at 0, neighbours clamped at the border.
pub(crate) fn upsample_bilinear(
    src: &[f32],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f32> {
    let ys: Vec<(usize, usize, f32)> = (0..out_h).map(|d| source_index(d, h, out_h)).collect();
    let xs: Vec<(usize, usize, f32)> = (0..out_w).map(|d| source_index(d, w, out_w)).collect();
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, ly) in &ys {
        for &(x0, x1, lx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - lx) + src[y0 * w + x1] * lx;
            let bottom = src[y1 * w + x0] * (1.0 - lx) + src[y1 * w + x1] * lx;
            out.push(top * (1.0 - ly) + bottom * ly);
        }
    }
    out
}

/// The two source indices and the weight of the second for output index `dst`.
fn source_index(dst: usize, len_in: usize, len_out: usize) -> (usize, usize, f32) {
    let scale = len_in as f64 / len_out as f64;
    let src = ((dst as f64 + 0.5) * scale - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(len_in - 1);
    let i1 = (i0 + 1).min(len_in - 1);
    (i0, i1, (src - i0 as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::upsample_bilinear;

    #[test]
    fn bilinear_matches_torch_align_corners_false() {
        // torch.nn.functional.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4),
        // mode="bilinear", align_corners=False)
        let want = [
            1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0,
        ];
        assert_eq!(upsample_bilinear(&[1.0, 2.0, 3.0, 4.0], 2, 2, 4, 4), want);
        // Same size is the identity; a single value spreads everywhere.
        let src = [0.5, -1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(upsample_bilinear(&src, 2, 3, 2, 3), src);
        assert_eq!(upsample_bilinear(&[7.0], 1, 1, 3, 2), [7.0; 6]);
        // Non-integer factor (5 -> 7 along one axis), against the formula by hand:
        // src = (d + 0.5) * 5/7 - 0.5 for d = 3 is 2.0, so the value is exactly src[2].
        let row = [0.0, 1.0, 4.0, 9.0, 16.0];
        let up = upsample_bilinear(&row, 1, 5, 1, 7);
        assert_eq!(up[3], 4.0);
        assert_eq!(up[0], 0.0); // clamped at the border
        assert_eq!(up[6], 16.0);
    }
}
