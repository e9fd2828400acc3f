//! relprop-zoo: bundled handwritten digits, two-digit composites and pretrained small CNNs.

#![warn(missing_docs)]

pub mod arch;
pub mod augment;
pub mod composites;
pub mod digits;
pub mod pretrained;
pub mod training;

pub use arch::{Architecture, Model, ALL};
