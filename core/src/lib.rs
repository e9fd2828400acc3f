//! relprop-core: tensors, kernels, and a tape whose backward rules are swappable.
//!
//! A forward pass is recorded once on a [`Tape`]; [`Tape::backward`] walks it back and asks
//! a [`RuleSet`] how each node passes its signal on. [`Exact`] gives exact gradients; other
//! rule sets (the LRP rules of `relprop-explain`) give relevance, over the same recording.
//!
//! ```
//! use relprop_core::{Exact, Tape, Tensor};
//!
//! let mut tape = Tape::new();
//! let x = tape.leaf(Tensor::from_vec(vec![1.0, -2.0, 3.0], &[1, 3])?);
//! let w = tape.param(Tensor::from_vec(vec![0.5, 0.5, 0.5, -1.0, 0.0, 1.0], &[2, 3])?, "fc.weight");
//! let y = tape.linear(x, w, None)?; // y = x W^T = [1.0, 2.0]
//! let r = tape.relu(y)?;
//! let grads = tape.backward(r, &Tensor::ones(&[1, 2]), &Exact)?;
//! // d(sum relu(x W^T))/dx = sum of the rows of W whose unit is active (both are)
//! assert_eq!(grads.get(x).unwrap().data(), &[-0.5, 0.5, 1.5]);
//! # Ok::<(), relprop_core::Error>(())
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod gradcheck;
pub mod kernels;
pub mod rng;
pub mod tape;
pub mod tensor;

pub use error::{Error, Result};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
pub use rng::Rng;
pub use tape::custom::CustomOp;
pub use tape::op::{NormStats, Op};
pub use tape::{vjp, Derivative, Edit, Exact, Node, NodeId, Rule, RuleSet, Saved, Signals, Tape};
pub use tensor::{numel, Conv2dSpec, Pool2dSpec, Tensor};
