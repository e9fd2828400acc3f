//! LRP rules: alternative backward functions for tape nodes.
//!
//! Affine layers (linear, conv2d) use [`BasicRule`], one recipe configured per rule: read
//! [`affine`] first (the recipe, its derivation and why it conserves), then [`family`]
//! (each rule's formula, purpose and source). The
//! nodes in between use [`Pass`] (activations), [`Norm`] (sums, average pooling),
//! [`Elementwise`] (shifts and scales by constants) and [`Gradient`] (max pooling, reshapes,
//! concatenation, padding).

mod absorbed;
pub mod affine;
mod bounds;
pub mod family;
mod fast;
mod simple;

pub use affine::{
    stabilize, Affine, BasicRule, Branch, Gate, Group, InputMod, ParamMod, Reference, Stabilizer,
};
pub use family::STABILIZER;
pub use simple::{Elementwise, Gradient, Norm, Pass, Unsupported};
