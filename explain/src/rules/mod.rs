//! LRP rules: alternative backward functions for tape nodes.
//!
//! Affine layers (linear, conv2d) use [`BasicRule`], one recipe configured per rule. The
//! nodes in between use [`Pass`] (activations), [`Norm`] (sums, average pooling),
//! [`Elementwise`] (shifts and scales by constants) and [`Gradient`] (max pooling, reshapes,
//! concatenation, padding).

mod absorbed;
mod affine;
mod bounds;
mod family;
mod simple;

pub use affine::{stabilize, Affine, BasicRule, Branch, Gate, Group, InputMod, ParamMod};
pub use family::STABILIZER;
pub use simple::{Elementwise, Gradient, Norm, Pass, Unsupported};
