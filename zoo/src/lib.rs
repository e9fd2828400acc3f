//! relprop-zoo: bundled handwritten digits, two-digit composites and pretrained small CNNs.

#![warn(missing_docs)]

pub mod arch;
pub mod composites;
pub mod digits;

pub use arch::{Architecture, Model, ALL};
