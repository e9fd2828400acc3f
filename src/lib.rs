//! relprop: automatic differentiation with explanation hooks.
//!
//! A forward pass is recorded once on a tape; the backward walk asks a rule set how each
//! node passes its signal on. Exact derivatives give gradients for training and saliency;
//! LRP rules give relevance. This crate re-exports the workspace's crates:
//!
//! - [`core`]: tensors, kernels, the tape and its pluggable backward walk;
//! - [`nn`]: layers, losses, optimizers, checkpoints and array I/O;
//! - [`explain`]: LRP rules, composites, SGLRP/CLRP seeds, attributors, heatmaps;
//! - [`zoo`]: bundled digits and pretrained small CNNs.
//!
//! ```
//! use relprop::core::{Exact, Tape, Tensor};
//!
//! let mut tape = Tape::new();
//! let x = tape.leaf(Tensor::from_vec(vec![3.0], &[1])?);
//! let y = tape.mul(x, x)?; // y = x^2
//! let g = tape.backward(y, &Tensor::ones(&[1]), &Exact)?;
//! assert_eq!(g.get(x).unwrap().data(), &[6.0]);
//! # Ok::<(), relprop::core::Error>(())
//! ```

pub use relprop_core as core;
pub use relprop_explain as explain;
pub use relprop_nn as nn;
pub use relprop_zoo as zoo;
