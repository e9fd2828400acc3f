//! `SameConv2d`: a convolution with TensorFlow's "SAME" padding, worked out per input.
//!
//! TensorFlow pads a strided convolution so that the output is `ceil(input / stride)`
//! long, putting the odd pixel of padding at the end (bottom, right). How much padding
//! that takes depends on the input's size, so it cannot be fixed when the layer is built
//! (a 224-pixel input needs 0 before and 1 after for a 3x3 stride-2 kernel, a 225-pixel
//! one 1 and 1); this layer computes it from the input on every forward pass and records
//! an ordinary `conv2d` node with that asymmetric padding.

use relprop_core::{Conv2dSpec, Error, NodeId, Result, Tape};
use relprop_nn::{Conv2d, Mode, Module, Param};

/// A [`Conv2d`] whose padding is TensorFlow's "SAME" for the input at hand; the padding
/// stored in the inner layer's spec is ignored.
#[derive(Clone, Debug)]
pub struct SameConv2d {
    /// The convolution: weights, stride, dilation and groups.
    pub conv: Conv2d,
}

/// Padding `(before, after)` along one axis of `input` pixels so that a kernel of
/// `kernel` taps (dilated by `dilation`) at `stride` gives `ceil(input / stride)` outputs.
pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let out = input.div_ceil(stride.max(1));
    let span = (kernel.max(1) - 1) * dilation + 1;
    let total = ((out.max(1) - 1) * stride + span).saturating_sub(input);
    (total / 2, total - total / 2)
}

impl SameConv2d {
    /// Wraps `conv`.
    pub fn new(conv: Conv2d) -> Self {
        SameConv2d { conv }
    }

    /// The spec for an input of `h` x `w` pixels.
    pub fn spec_for(&self, h: usize, w: usize) -> Conv2dSpec {
        let s = self.conv.spec;
        let [kh, kw] = self.conv.kernel();
        let (top, bottom) = same_padding(h, kh, s.stride[0], s.dilation[0]);
        let (left, right) = same_padding(w, kw, s.stride[1], s.dilation[1]);
        Conv2dSpec {
            padding: [top, left],
            padding_end: [bottom, right],
            ..s
        }
    }
}

impl Module for SameConv2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let &[_, _, h, w] = tape.value(x)?.shape() else {
            return Err(Error::shape(
                "SameConv2d",
                &[tape.value(x)?.shape()],
                "the input must be [N, C, H, W]",
            ));
        };
        let spec = self.spec_for(h, w);
        let weight = self.conv.weight.record(tape);
        let bias = self.conv.bias.as_ref().map(|b| b.record(tape));
        let y = tape.conv2d(x, weight, bias, spec)?;
        tape.set_label(y, self.conv.name())?;
        Ok(y)
    }

    fn params(&self) -> Vec<&Param> {
        self.conv.params()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.conv.params_mut()
    }

    fn describe(&self) -> String {
        format!("{} (TF SAME padding)", self.conv.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::same_padding;

    #[test]
    fn same_padding_matches_tensorflow_on_even_and_odd_sizes() {
        // 3x3 stride 2: 224 -> 112 needs (112-1)*2+3-224 = 1 pixel, all after.
        assert_eq!(same_padding(224, 3, 2, 1), (0, 1));
        // 225 -> 113 needs 2: one each side.
        assert_eq!(same_padding(225, 3, 2, 1), (1, 1));
        // 5x5 stride 2 on 28 -> 14: 26 + 5 - 28 = 3, the odd one after.
        assert_eq!(same_padding(28, 5, 2, 1), (1, 2));
        // Stride 1 keeps the size: k - 1 split evenly for odd kernels.
        assert_eq!(same_padding(7, 5, 1, 1), (2, 2));
        // A kernel larger than the input still gives one output.
        assert_eq!(same_padding(1, 3, 2, 1), (1, 1));
    }
}
