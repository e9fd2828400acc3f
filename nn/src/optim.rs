//! Optimizers (SGD with momentum, Adam), gradients gathered by parameter name, and a
//! cosine learning-rate schedule.
//!
//! Parameters are recorded on the tape as leaves labelled with their `state_dict` names,
//! so after a backward walk [`Gradients::from_tape`] can collect each parameter's gradient
//! by name, and an optimizer keeps its per-parameter state (momentum, moments) under the
//! same name. Tensors are immutable: an update takes the values out with
//! [`Tensor::into_vec`], changes them in place and wraps them again.

use crate::module::Param;
use relprop_core::{Error, Op, Result, Signals, Tape, Tensor};
use std::collections::HashMap;

/// Gradients of trainable parameters, keyed by parameter name.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    grads: HashMap<String, Tensor>,
}

impl Gradients {
    /// Collects the signal at every labelled leaf that wants one (the parameters recorded
    /// with [`Param::record`] on a training tape). A parameter recorded twice (a shared
    /// layer) gets the sum of both signals; one the walk never reached is absent.
    pub fn from_tape(tape: &Tape, signals: &Signals) -> Result<Self> {
        let mut grads: HashMap<String, Tensor> = HashMap::new();
        for (id, node) in tape.nodes().iter().enumerate() {
            let (
                Op::Leaf {
                    requires_grad: true,
                },
                Some(label),
            ) = (&node.op, &node.label)
            else {
                continue;
            };
            let Some(g) = signals.get(id) else { continue };
            match grads.get_mut(label) {
                Some(acc) => *acc = acc.add(g)?,
                None => {
                    grads.insert(label.clone(), g.clone());
                }
            }
        }
        Ok(Gradients { grads })
    }

    /// Sets (or replaces) the gradient of `name`.
    pub fn insert(&mut self, name: impl Into<String>, grad: Tensor) {
        self.grads.insert(name.into(), grad);
    }

    /// The gradient of the parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.grads.get(name)
    }

    /// Number of parameters with a gradient.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// True when no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// Parameter names with a gradient, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.grads.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The L2 norm of all gradients taken together.
    pub fn global_norm(&self) -> f32 {
        let sq: f64 = self
            .grads
            .values()
            .flat_map(|g| g.data())
            .map(|&v| (v as f64) * (v as f64))
            .sum();
        sq.sqrt() as f32
    }

    /// Scales every gradient so the global norm is at most `max_norm`, as
    /// `clip_grad_norm_`; returns the norm before clipping.
    pub fn clip_global_norm(&mut self, max_norm: f32) -> f32 {
        let norm = self.global_norm();
        if norm > max_norm && norm > 0.0 {
            let scale = max_norm / (norm + 1e-6);
            for g in self.grads.values_mut() {
                *g = g.mul_scalar(scale);
            }
        }
        norm
    }
}

/// Updates parameters from their gradients.
pub trait Optimizer {
    /// One update of every trainable parameter that has a gradient in `grads` (looked up
    /// by the parameter's name). Buffers and parameters without a gradient are left alone.
    fn step(&mut self, params: Vec<&mut Param>, grads: &Gradients) -> Result<()>;
    /// Sets the learning rate (for schedules).
    fn set_lr(&mut self, lr: f32);
    /// The current learning rate.
    fn lr(&self) -> f32;
}

/// The gradient of a trainable parameter, checked against its shape; `None` to skip it.
fn grad_for<'a>(p: &Param, grads: &'a Gradients) -> Result<Option<&'a Tensor>> {
    if !p.trainable {
        return Ok(None);
    }
    let Some(g) = grads.get(&p.name) else {
        return Ok(None);
    };
    if g.shape() != p.value.shape() {
        return Err(Error::shape(
            "optimizer",
            &[p.value.shape(), g.shape()],
            format!("the gradient of `{}` does not match its shape", p.name),
        ));
    }
    Ok(Some(g))
}

/// Per-parameter state, reset if the parameter's size changed (new weights were loaded).
fn state_for<'a>(map: &'a mut HashMap<String, Vec<f32>>, name: &str, n: usize) -> &'a mut Vec<f32> {
    let s = map.entry(name.to_string()).or_default();
    if s.len() != n {
        *s = vec![0.0; n];
    }
    s
}

/// Applies `f(index, value)` to a parameter's values in place.
fn update(p: &mut Param, mut f: impl FnMut(usize, &mut f32)) -> Result<()> {
    update_all(p, |w| w.iter_mut().enumerate().for_each(|(i, v)| f(i, v)))
}

/// Applies `f` to all of a parameter's values at once, in place.
fn update_all(p: &mut Param, f: impl FnOnce(&mut [f32])) -> Result<()> {
    let shape = p.value.shape().to_vec();
    let mut w = std::mem::replace(&mut p.value, Tensor::scalar(0.0)).into_vec();
    f(&mut w);
    p.value = Tensor::from_vec(w, &shape)?;
    Ok(())
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
/// decay, with PyTorch's `torch.optim.SGD` semantics (no dampening).
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 for plain SGD).
    pub momentum: f32,
    /// L2 penalty added to the gradient: `g + weight_decay * w`.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    buffers: HashMap<String, Vec<f32>>,
}

impl Sgd {
    /// SGD with the given learning rate, momentum and weight decay; Nesterov off.
    pub fn new(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        Sgd {
            lr,
            momentum,
            weight_decay,
            nesterov: false,
            buffers: HashMap::new(),
        }
    }

    /// Turns Nesterov momentum on or off.
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: Vec<&mut Param>, grads: &Gradients) -> Result<()> {
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        for p in params {
            let Some(g) = grad_for(p, grads)? else {
                continue;
            };
            let g = g.data();
            if mu == 0.0 {
                update(p, |i, w| *w -= lr * (g[i] + wd * *w))?;
                continue;
            }
            // PyTorch starts the buffer at the first gradient rather than at zero.
            let fresh = !self.buffers.contains_key(&p.name);
            let buf = state_for(&mut self.buffers, &p.name, g.len());
            update(p, |i, w| {
                let d = g[i] + wd * *w;
                buf[i] = if fresh { d } else { mu * buf[i] + d };
                let step = if nesterov { d + mu * buf[i] } else { buf[i] };
                *w -= lr * step;
            })?;
        }
        Ok(())
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn lr(&self) -> f32 {
        self.lr
    }
}

/// Adam with PyTorch's `torch.optim.Adam` semantics: bias-corrected moments, `eps` added
/// after the square root, and weight decay as an L2 term added to the gradient.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment (0.9).
    pub beta1: f32,
    /// Decay of the second moment (0.999).
    pub beta2: f32,
    /// Added to the denominator (1e-8).
    pub eps: f32,
    /// L2 penalty added to the gradient: `g + weight_decay * w`.
    pub weight_decay: f32,
    state: HashMap<String, AdamState>,
}

/// Adam's per-parameter state.
#[derive(Clone, Debug, Default)]
struct AdamState {
    m: Vec<f32>,
    v: Vec<f32>,
    t: u64,
}

impl Adam {
    /// Adam with PyTorch's defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay).
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            state: HashMap::new(),
        }
    }

    /// Sets the L2 weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Number of updates applied to the parameter called `name`.
    pub fn steps_of(&self, name: &str) -> u64 {
        self.state.get(name).map_or(0, |s| s.t)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: Vec<&mut Param>, grads: &Gradients) -> Result<()> {
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        for p in params {
            let Some(g) = grad_for(p, grads)? else {
                continue;
            };
            let g = g.data();
            let n = g.len();
            let st = self.state.entry(p.name.clone()).or_default();
            if st.m.len() != n {
                // New or resized parameter (other weights were loaded): start afresh.
                *st = AdamState {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                    t: 0,
                };
            }
            st.t += 1;
            let AdamState { m, v, t } = st;
            let k = (*t).min(i32::MAX as u64) as i32;
            let bc1 = 1.0 - b1.powi(k);
            let bc2_sqrt = (1.0 - b2.powi(k)).sqrt();
            let step_size = self.lr / bc1;
            // Zipped slices rather than indices: the loop vectorises (same arithmetic).
            update_all(p, |w| {
                let state = m.iter_mut().zip(v.iter_mut());
                for ((w, &g), (m, v)) in w.iter_mut().zip(g).zip(state) {
                    let d = g + wd * *w;
                    *m = b1 * *m + (1.0 - b1) * d;
                    *v = b2 * *v + (1.0 - b2) * d * d;
                    *w -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
                }
            })?;
        }
        Ok(())
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn lr(&self) -> f32 {
        self.lr
    }
}

/// Cosine annealing from `base` at step 0 to 0 at step `total` (held at 0 afterwards):
/// `base * (1 + cos(pi * step / total)) / 2`, as `CosineAnnealingLR` with `eta_min = 0`.
pub fn cosine_lr(base: f32, step: usize, total: usize) -> f32 {
    if total == 0 {
        return base;
    }
    let t = step.min(total) as f64 / total as f64;
    (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
}
