//! relprop: automatic differentiation with explanation hooks.
//!
//! A forward pass is recorded once on a tape; the backward walk asks a rule set how each
//! node passes its signal on. Exact derivatives give gradients for training and saliency;
//! LRP rules give relevance. This crate re-exports the workspace's crates:
//!
//! - [`core`]: tensors, kernels, the tape and its pluggable backward walk;
//! - [`nn`]: layers, losses, optimizers, checkpoints and array I/O;
//! - [`explain`]: LRP rules, composites, SGLRP/CLRP seeds, attributors, heatmaps;
//! - [`zoo`]: bundled digits and pretrained small CNNs;
//! - [`onnx`]: models read from `.onnx` files, run and explained like the zoo's.
//!
//! New here? Follow the course in `docs/course/` (tensors, the tape, training, LRP by
//! hand, rules, SGLRP and CLRP, your own model); every code block in it runs as a doc
//! test of this crate.
//!
//! Quick start: load a zoo model, explain a digit with SGLRP, write a heatmap.
//!
//! ```
//! use relprop::core::Tensor;
//! use relprop::explain::heatmap::{Cell, ColorMap, Grid};
//! use relprop::explain::{explain, Composite, Method, Targets};
//! use relprop::zoo::{digits, pretrained, Architecture};
//!
//! let model = pretrained::load(Architecture::Lenet5)?;
//! let data = digits::load()?;
//! let x = Tensor::from_vec(data.image_f32(data.test_indices()[0]), &[1, 1, 28, 28])?;
//! let rules = Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
//! let a = explain(&model, &x, &Targets::Argmax, &Method::Sglrp { composite: rules })?;
//! println!("{}", a.audit); // relevance sum and conservation error at every layer
//! let mut grid = Grid::new(112, 4);
//! let map = a.relevance.data().to_vec();
//! grid.add_row(vec![Cell::Input(x.data().to_vec(), 28, 28), Cell::Heatmap(map, 28, 28, ColorMap::Bwr)]);
//! grid.save(&std::env::temp_dir().join("sglrp.png"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use relprop_core as core;
pub use relprop_explain as explain;
pub use relprop_nn as nn;
pub use relprop_onnx as onnx;
pub use relprop_zoo as zoo;

pub mod evaluation;

/// The course in `docs/course/`, one page per item, compiled and run as doc tests so that
/// every snippet and its checked output stay true.
#[cfg(doctest)]
pub mod course {
    #[doc = include_str!("../docs/course/01-tensors.md")]
    pub struct Tensors;
    #[doc = include_str!("../docs/course/02-tape.md")]
    pub struct TheTape;
    #[doc = include_str!("../docs/course/03-custom-op.md")]
    pub struct CustomOp;
    #[doc = include_str!("../docs/course/04-training.md")]
    pub struct Training;
    #[doc = include_str!("../docs/course/05-lrp-by-hand.md")]
    pub struct LrpByHand;
    #[doc = include_str!("../docs/course/06-rules-and-composites.md")]
    pub struct RulesAndComposites;
    #[doc = include_str!("../docs/course/07-writing-a-rule.md")]
    pub struct WritingARule;
    #[doc = include_str!("../docs/course/08-sglrp-and-clrp.md")]
    pub struct SglrpAndClrp;
    #[doc = include_str!("../docs/course/09-verifying-conservation.md")]
    pub struct VerifyingConservation;
    #[doc = include_str!("../docs/course/10-your-own-model.md")]
    pub struct YourOwnModel;
}
