//! relprop-zoo: bundled handwritten digits, two-digit images (digit pairs) and pretrained small CNNs.

#![warn(missing_docs)]

pub mod arch;
pub mod augment;
pub mod digits;
pub mod pairs;
pub mod pretrained;
pub mod training;

pub use arch::{Architecture, Model, ALL};
