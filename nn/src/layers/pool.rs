//! Pooling layers: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d` (a fixed output size),
//! and `GlobalAvgPool` (average over the whole plane, as the `AdaptiveAvgPool2d(1)` +
//! flatten of ResNet heads).

use super::{labelled, line};
use crate::module::{Mode, Module};
use relprop_core::{Error, NodeId, Pool2dSpec, Result, Tape};

fn spec_text(s: &Pool2dSpec) -> String {
    let axes = |a: [usize; 2]| {
        if a[0] == a[1] {
            a[0].to_string()
        } else {
            format!("{}x{}", a[0], a[1])
        }
    };
    format!(
        "k{} s{} p{}",
        axes(s.kernel),
        axes(s.stride),
        axes(s.padding)
    )
}

/// Max pooling, one `max_pool2d` node labelled with the layer's name.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    name: String,
    /// Window, stride and padding.
    pub spec: Pool2dSpec,
}

impl MaxPool2d {
    /// Square window `kernel`, `stride` and `padding` on both axes.
    pub fn new(name: impl Into<String>, kernel: usize, stride: usize, padding: usize) -> Self {
        Self::with_spec(name, Pool2dSpec::new(kernel, stride, padding))
    }

    /// Any window, stride and padding.
    pub fn with_spec(name: impl Into<String>, spec: Pool2dSpec) -> Self {
        MaxPool2d {
            name: name.into(),
            spec,
        }
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Module for MaxPool2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.max_pool2d(x, self.spec)?;
        labelled(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(
            Some(&self.name),
            &format!("max_pool2d {}", spec_text(&self.spec)),
        )
    }
}

/// Average pooling (padding counts as zeros), one `avg_pool2d` node labelled with the
/// layer's name.
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    name: String,
    /// Window, stride and padding.
    pub spec: Pool2dSpec,
}

impl AvgPool2d {
    /// Square window `kernel`, `stride` and `padding` on both axes.
    pub fn new(name: impl Into<String>, kernel: usize, stride: usize, padding: usize) -> Self {
        Self::with_spec(name, Pool2dSpec::new(kernel, stride, padding))
    }

    /// Any window, stride and padding.
    pub fn with_spec(name: impl Into<String>, spec: Pool2dSpec) -> Self {
        AvgPool2d {
            name: name.into(),
            spec,
        }
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Module for AvgPool2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = tape.avg_pool2d(x, self.spec)?;
        labelled(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        line(
            Some(&self.name),
            &format!("avg_pool2d {}", spec_text(&self.spec)),
        )
    }
}

/// Global average pooling `[n, c, h, w] -> [n, c]`: one `avg_pool2d` node whose window is
/// the whole plane, then a `reshape`.
///
/// The label `name` goes on the `avg_pool2d` node, not on the reshape: rule sets then see a
/// plain average pooling under the layer's name, and the reshape after it is a view that
/// needs no rule of its own. `tape.find(name)` therefore returns the `[n, c, 1, 1]` node.
#[derive(Clone, Debug)]
pub struct GlobalAvgPool {
    name: String,
}

impl GlobalAvgPool {
    /// A global average pooling labelled `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GlobalAvgPool { name: name.into() }
    }

    /// The layer's full name, which labels its `avg_pool2d` node.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Module for GlobalAvgPool {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let &[n, c, h, w] = tape.value(x)?.shape() else {
            return Err(Error::shape(
                "GlobalAvgPool",
                &[tape.value(x)?.shape()],
                "the input must be [N, C, H, W]",
            ));
        };
        let spec = Pool2dSpec {
            kernel: [h, w],
            stride: [h.max(1), w.max(1)],
            padding: [0, 0],
        };
        let pooled = tape.avg_pool2d(x, spec)?;
        tape.set_label(pooled, self.name.as_str())?;
        tape.reshape(pooled, &[n, c])
    }

    fn describe(&self) -> String {
        line(Some(&self.name), "global_avg_pool")
    }
}

/// Average pooling to a fixed output size `[oh, ow]`, as `torch.nn.AdaptiveAvgPool2d`, for
/// inputs whose plane the output size divides: then it is exactly one `avg_pool2d` node
/// (window and stride `[h / oh, w / ow]`) labelled with the layer's name.
///
/// PyTorch also accepts sizes that do not divide, with overlapping windows of varying
/// size; no single `avg_pool2d` computes that, so such inputs are an error here rather
/// than a silently different average.
#[derive(Clone, Debug)]
pub struct AdaptiveAvgPool2d {
    name: String,
    output: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pooling to `[oh, ow]` labelled `name` (the size is checked against each input).
    pub fn new(name: impl Into<String>, output: [usize; 2]) -> Self {
        AdaptiveAvgPool2d {
            name: name.into(),
            output,
        }
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output size `[oh, ow]`.
    pub fn output_size(&self) -> [usize; 2] {
        self.output
    }

    /// The window (= stride) that pools an `[h, w]` plane to the output size.
    pub fn spec_for(&self, h: usize, w: usize) -> Result<Pool2dSpec> {
        let [oh, ow] = self.output;
        let fits = |n: usize, o: usize| o > 0 && n >= o && n.is_multiple_of(o);
        if !fits(h, oh) || !fits(w, ow) {
            return Err(Error::shape(
                "AdaptiveAvgPool2d",
                &[&[h, w], &self.output],
                format!(
                    "`{}`: the output size must be at least 1 and divide the input plane",
                    self.name
                ),
            ));
        }
        let window = [h / oh, w / ow];
        Ok(Pool2dSpec {
            kernel: window,
            stride: window,
            padding: [0, 0],
        })
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let &[_, _, h, w] = tape.value(x)?.shape() else {
            return Err(Error::shape(
                "AdaptiveAvgPool2d",
                &[tape.value(x)?.shape()],
                "the input must be [N, C, H, W]",
            ));
        };
        let y = tape.avg_pool2d(x, self.spec_for(h, w)?)?;
        labelled(tape, y, &self.name)
    }

    fn describe(&self) -> String {
        let [oh, ow] = self.output;
        line(Some(&self.name), &format!("adaptive_avg_pool2d {oh}x{ow}"))
    }
}
