//! relprop-zoo: bundled handwritten digits, two-digit composites and pretrained small CNNs.

pub mod composites;
pub mod digits;
