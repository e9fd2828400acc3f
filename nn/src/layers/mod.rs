//! Layers: each records itself on a tape as one or a few nodes, labelled with its name.
//!
//! Every layer stores its full PyTorch-style name (`features.conv1`) given at construction,
//! names its parameters `{name}.weight`, `{name}.bias` and so on, and labels the node it
//! outputs with its own name. Rule sets for explanations find layers by these labels, and
//! because `Linear` and `Conv2d` are one tape node each, a per-layer rule sees the whole
//! affine map (input, weight and bias together).
//!
//! ```
//! use relprop_core::{Rng, Tape, Tensor};
//! use relprop_nn::{cross_entropy, Adam, Gradients, Linear, Mode, Module, Optimizer, Relu, Sequential};
//!
//! let mut rng = Rng::new(0);
//! let mut model = Sequential::new("")
//!     .with(Linear::new("classifier.fc1", 4, 8, true, &mut rng))
//!     .with(Relu::named("classifier.relu1"))
//!     .with(Linear::new("classifier.fc2", 8, 3, true, &mut rng));
//! let mut opt = Adam::new(1e-2);
//!
//! let mut tape = Tape::new();
//! let x = tape.constant(Tensor::rand_normal(&[2, 4], 0.0, 1.0, 1));
//! let logits = model.forward(&mut tape, x, Mode::Train)?;
//! assert_eq!(tape.find("classifier.fc2"), Some(logits)); // layers label their outputs
//! let loss = cross_entropy(&mut tape, logits, &[0, 2])?;
//! let grads = Gradients::from_tape(&tape, &tape.grad(loss)?)?;
//! assert!(grads.get("classifier.fc1.weight").is_some()); // found by state_dict name
//! opt.step(model.params_mut(), &grads)?;
//! # Ok::<(), relprop_core::Error>(())
//! ```

mod activation;
mod batchnorm;
mod concat;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod normalize;
mod pool;
mod residual;
mod sequential;

pub use activation::{Clamp, LeakyRelu, Relu, Sigmoid, Tanh};
pub use batchnorm::BatchNorm2d;
pub use concat::Concat;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::Linear;
pub use normalize::Normalize;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool, MaxPool2d};
pub use residual::Residual;
pub use sequential::Sequential;

use crate::module::Param;
use relprop_core::{Error, NodeId, Result, Tape, Tensor};

/// Labels `id` with `name` and hands the id back, so a forward pass can end with it.
fn labelled(tape: &mut Tape, id: NodeId, name: &str) -> Result<NodeId> {
    tape.set_label(id, name)?;
    Ok(id)
}

/// `name: what`, or just `what` for an unnamed layer: the `describe` line format.
fn line(name: Option<&str>, what: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n}: {what}"),
        _ => what.to_string(),
    }
}

/// The `{name}.weight` and optional `{name}.bias` parameters of an affine layer, once the
/// weight has `rank` dimensions (`layout` names them for the error) and the bias matches
/// its first one, the number of outputs.
fn affine_params(
    op: &'static str,
    name: &str,
    (weight, rank, layout): (Tensor, usize, &str),
    bias: Option<Tensor>,
) -> Result<(Param, Option<Param>)> {
    if weight.rank() != rank {
        return Err(Error::shape(
            op,
            &[weight.shape()],
            format!("the weight must be {layout}"),
        ));
    }
    let out = weight.shape()[0];
    if let Some(b) = bias.as_ref().filter(|b| b.shape() != [out]) {
        return Err(Error::shape(
            op,
            &[weight.shape(), b.shape()],
            format!("the bias must be [{out}]"),
        ));
    }
    Ok((
        Param::new(format!("{name}.weight"), weight),
        bias.map(|b| Param::new(format!("{name}.bias"), b)),
    ))
}
