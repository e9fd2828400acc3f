//! Gradient-based and perturbation baselines (filled in by the attributors work).

use relprop_core::{Error, Result, Tensor};
use relprop_nn::Module;

fn pending(name: &str) -> Error {
    Error::invalid("explain", format!("{name} is not available yet"))
}

/// SmoothGrad.
pub fn smoothgrad(
    _m: &dyn Module,
    _x: &Tensor,
    _t: &[usize],
    _samples: usize,
    _noise: f32,
    _seed: u64,
) -> Result<Tensor> {
    Err(pending("smoothgrad"))
}
/// Integrated gradients.
pub fn integrated_gradients(
    _m: &dyn Module,
    _x: &Tensor,
    _t: &[usize],
    _steps: usize,
    _baseline: f32,
) -> Result<Tensor> {
    Err(pending("integrated-gradients"))
}
/// Grad-CAM.
pub fn grad_cam(
    _m: &dyn Module,
    _x: &Tensor,
    _t: &[usize],
    _layer: Option<&str>,
) -> Result<Tensor> {
    Err(pending("grad-cam"))
}
/// Occlusion.
pub fn occlusion(
    _m: &dyn Module,
    _x: &Tensor,
    _t: &[usize],
    _window: usize,
    _stride: usize,
) -> Result<Tensor> {
    Err(pending("occlusion"))
}
