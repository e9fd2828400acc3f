//! The options of a 2-D convolution ([`Conv2dSpec`]) and their validation against the
//! operand shapes, which yields the kernels' geometry.

use crate::error::{Error, Result};
use crate::kernels::conv_general::GeneralGeom;

/// Stride, zero padding, dilation and groups of a 2-D convolution, per axis (rows,
/// columns), as in ONNX's `Conv` and PyTorch's `conv2d`.
///
/// Build one with [`Conv2dSpec::new`] (or `Default`) and the `with_*` methods; the
/// fields are public so a spec can also be written out in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Step between windows, `[rows, cols]`, each at least 1.
    pub stride: [usize; 2],
    /// Zeros added at the start of each axis, `[top, left]`.
    pub padding: [usize; 2],
    /// Zeros added at the end of each axis, `[bottom, right]`.
    pub padding_end: [usize; 2],
    /// Spacing between kernel taps, `[rows, cols]`, each at least 1 (1: dense kernel).
    pub dilation: [usize; 2],
    /// Channel groups, at least 1: group `g` maps input channels `g * in / groups ..` to
    /// output channels `g * out / groups ..` (`groups == in`: depthwise).
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec::new(1, 0)
    }
}

impl Conv2dSpec {
    /// The same stride and padding on both axes and both sides; no dilation, one group.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dSpec {
            stride: [stride; 2],
            padding: [padding; 2],
            padding_end: [padding; 2],
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// This spec with stride `[rows, cols]`.
    pub fn with_stride(self, stride: [usize; 2]) -> Self {
        Conv2dSpec { stride, ..self }
    }

    /// This spec with padding `[bottom, right]` at the end of each axis (the start keeps
    /// `padding`).
    pub fn with_padding_end(self, padding_end: [usize; 2]) -> Self {
        Conv2dSpec {
            padding_end,
            ..self
        }
    }

    /// This spec with padding `[top, left]` at the start and `[bottom, right]` at the end
    /// (ONNX's `pads` is `[top, left, bottom, right]`).
    pub fn with_pads(self, start: [usize; 2], end: [usize; 2]) -> Self {
        Conv2dSpec {
            padding: start,
            padding_end: end,
            ..self
        }
    }

    /// This spec with dilation `[rows, cols]`.
    pub fn with_dilation(self, dilation: [usize; 2]) -> Self {
        Conv2dSpec { dilation, ..self }
    }

    /// This spec with `groups` channel groups.
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dSpec { groups, ..self }
    }

    /// True for the convolutions the optimised kernels take: no dilation, one group, the
    /// same padding at both ends of each axis.
    pub fn is_plain(&self) -> bool {
        self.dilation == [1, 1] && self.groups == 1 && self.padding == self.padding_end
    }
}

/// Validates conv2d shapes against `spec` and returns the kernel geometry.
pub(crate) fn conv_geom(
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
    spec: &Conv2dSpec,
) -> Result<GeneralGeom> {
    let op = "conv2d";
    let shapes: Vec<&[usize]> = [Some(x), Some(w), b].into_iter().flatten().collect();
    let fail = |reason: String| Err(Error::shape(op, &shapes, reason));
    let ([n, c_in, h, wd], [c_out, wc, kh, kw]) = match (x, w) {
        (&[n, c, h, wd], &[o, i, kh, kw]) => ([n, c, h, wd], [o, i, kh, kw]),
        _ => {
            return fail(
                "input [N, C, H, W] and weight [out, in / groups, kh, kw] need 4 dimensions".into(),
            )
        }
    };
    let groups = spec.groups;
    if groups == 0 {
        return Err(Error::invalid(op, "groups must be at least 1"));
    }
    if !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
        return fail(format!(
            "{groups} groups must divide the {c_in} input and {c_out} output channels"
        ));
    }
    if wc * groups != c_in {
        return fail(format!(
            "the input has {c_in} channels in {groups} groups, so the weight needs {} per group, not {wc}",
            c_in / groups
        ));
    }
    if let Some(b) = b {
        if b != [c_out] {
            return fail(format!("the bias must have shape [{c_out}]"));
        }
    }
    if spec.stride.contains(&0) {
        return Err(Error::invalid(op, "stride must be at least 1"));
    }
    if spec.dilation.contains(&0) {
        return Err(Error::invalid(op, "dilation must be at least 1"));
    }
    // Checked: absurd options are an error, not an overflow.
    let reach = |k: usize, d: usize| k.checked_sub(1)?.checked_mul(d)?.checked_add(1);
    let padded = |len: usize, a: usize, b: usize| len.checked_add(a)?.checked_add(b);
    let fits = match (
        reach(kh, spec.dilation[0]),
        reach(kw, spec.dilation[1]),
        padded(h, spec.padding[0], spec.padding_end[0]),
        padded(wd, spec.padding[1], spec.padding_end[1]),
    ) {
        (Some(rh), Some(rw), Some(ph), Some(pw)) => rh <= ph && rw <= pw,
        _ => false,
    };
    if !fits {
        return fail(format!(
            "a {kh}x{kw} kernel dilated by {:?} does not fit the {h}x{wd} input padded by {:?} (start) and {:?} (end)",
            spec.dilation, spec.padding, spec.padding_end
        ));
    }
    Ok(GeneralGeom {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        kh,
        kw,
        stride: spec.stride,
        pad_start: spec.padding,
        pad_end: spec.padding_end,
        dilation: spec.dilation,
        groups,
    })
}
