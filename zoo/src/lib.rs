//! relprop-zoo: bundled handwritten digits, two-digit images (digit pairs) and pretrained small CNNs;
//! EfficientNet-Lite0 with ImageNet's class names and a few bundled photos.

#![warn(missing_docs)]

pub mod arch;
pub mod augment;
pub mod digits;
pub mod efficientnet;
pub mod imagenet;
pub mod pairs;
pub mod photos;
pub mod pretrained;
pub mod same_conv;
pub mod training;

pub use arch::{Architecture, Model, ALL, IMAGENET};
