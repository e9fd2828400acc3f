//! Evaluating explanations on ground truth relprop controls (the README's "Does SGLRP discriminate between classes?").
//!
//! - [`discrimination`]: on two-digit composites, does the map for class t sit on the digit
//!   of class t? (pointing game, relevance mass and rank accuracy, and the correlation
//!   between the two classes' maps).
//! - [`photo_pairs`]: the same on real photos, two side by side, with `efficientnet_lite0`.
//! - [`faithfulness`]: on single digits, how fast does the target score fall when the most
//!   relevant pixels are removed first (AOPC), against a random order?

mod discrimination;
mod faithfulness;
pub mod photo_pairs;

pub use discrimination::{discrimination, DiscriminationRow, DISCRIMINATION_METHODS};
pub use faithfulness::{
    faithfulness, FaithfulnessRow, FAITHFULNESS_METHODS, PIXELS_PER_STEP, STEPS,
};

use crate::core::{Error, Result, Tensor};
use crate::explain::{Composite, Method, Seed};

/// The evaluation's method names and what they run.
pub fn method(name: &str) -> Result<Method> {
    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    Ok(match name {
        "gradient" => Method::Gradient,
        "gradient-x-input" => Method::GradientXInput,
        "integrated-gradients" => Method::IntegratedGradients {
            steps: 32,
            baseline: 0.0,
        },
        "smoothgrad" => Method::SmoothGrad {
            samples: 16,
            noise: 0.1,
            seed: 0,
        },
        "grad-cam" => Method::GradCam { layer: None },
        "lrp-epsilon-plus" => Method::Lrp {
            composite: Composite::epsilon_plus(1e-6),
            seed: Seed::OneHot,
        },
        "lrp-bounded-deep-taylor" => Method::Lrp {
            composite: bdt(),
            seed: Seed::OneHot,
        },
        "clrp1" => Method::Clrp1 { composite: bdt() },
        "clrp2" => Method::Clrp2 { composite: bdt() },
        "sglrp" => Method::Sglrp { composite: bdt() },
        "sglrp-two-pass" => Method::SglrpTwoPass {
            composite: bdt(),
            positive_only: false,
        },
        other => return Err(Error::invalid("eval", format!("unknown method '{other}'"))),
    })
}

/// One sample's map summed over channels: `[n, c, h, w]` -> `h * w` values of sample `i`.
pub(crate) fn sample_map(r: &Tensor, i: usize) -> Vec<f32> {
    let (c, h, w) = (r.shape()[1], r.shape()[2], r.shape()[3]);
    let per = c * h * w;
    let mut map = vec![0.0f32; h * w];
    for (k, &v) in r.data()[i * per..(i + 1) * per].iter().enumerate() {
        map[k % (h * w)] += v;
    }
    map
}
