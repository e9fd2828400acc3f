//! Attribution methods: what `relprop explain --method M` runs.
//!
//! LRP-type methods record the forward pass once and walk it back with a composite's rules;
//! they differ only in the seed (LRP, SGLRP, CLRP1) or in a second walk (CLRP2, two-pass SGLRP).

use crate::attributors;
use crate::audit::Audit;
use crate::batching;
use crate::composite::Composite;
use crate::contrastive;
use crate::seed::{Seed, Targets};
use relprop_core::kernels::split::on_pool;
use relprop_core::{Error, Exact, NodeId, Result, RuleSet, Signals, Tape, Tensor};
use relprop_nn::{Mode, Module};

/// A forward pass recorded for explanation (parameters are constants on this tape).
pub struct Recorded {
    /// The tape.
    pub tape: Tape,
    /// The input node (labelled `input`).
    pub input: NodeId,
    /// The logits node.
    pub output: NodeId,
}

impl Recorded {
    /// The logits `[n, classes]`.
    pub fn logits(&self) -> &Tensor {
        &self.tape.nodes()[self.output].value
    }

    /// Walks back from the logits with `seed` and `rules`; returns the input relevance too.
    pub fn walk(&self, seed: &Tensor, rules: &dyn RuleSet) -> Result<(Tensor, Signals)> {
        let signals = self.tape.backward(self.output, seed, rules)?;
        let r = signals.get_or_zeros(&self.tape, self.input)?;
        Ok((r, signals))
    }
}

/// Records `model` on `x` in evaluation mode. Errors when the output is not `[n, classes]`
/// or an activation is not finite (naming the layer, see [`Tape::check_finite`]).
pub fn record(model: &dyn Module, x: &Tensor) -> Result<Recorded> {
    let mut tape = Tape::for_inference();
    let input = tape.leaf(x.clone());
    tape.set_label(input, "input")?;
    let output = model.forward(&mut tape, input, Mode::Eval)?;
    tape.check_finite("explain", output)?;
    let shape = tape.value(output)?.shape();
    if shape.len() != 2 || shape[0] != x.shape()[0] {
        return Err(Error::shape(
            "explain",
            &[x.shape(), shape],
            "the model must map [n, ...] inputs to [n, classes] logits",
        ));
    }
    Ok(Recorded {
        tape,
        input,
        output,
    })
}

/// An attribution method and its settings.
#[derive(Clone)]
pub enum Method {
    /// The gradient of the target logit (saliency).
    Gradient,
    /// Input times gradient.
    GradientXInput,
    /// Mean gradient over noisy copies of the input.
    SmoothGrad {
        /// Number of noisy samples.
        samples: usize,
        /// Noise standard deviation relative to the input's value range.
        noise: f32,
        /// Random seed of the noise.
        seed: u64,
    },
    /// Path-integrated gradients from a baseline.
    IntegratedGradients {
        /// Riemann steps along the path.
        steps: usize,
        /// Constant baseline value (0: a black image).
        baseline: f32,
    },
    /// Grad-CAM at a conv layer (default: the last conv layer), upsampled to the input.
    GradCam {
        /// Label of the conv layer.
        layer: Option<String>,
    },
    /// Drop in the target logit when a window is occluded with zeros.
    Occlusion {
        /// Window side.
        window: usize,
        /// Step between windows.
        stride: usize,
    },
    /// LRP with a composite and a seed (one-hot `e_t` by default).
    Lrp {
        /// Rules.
        composite: Composite,
        /// Seed on the logits.
        seed: Seed,
    },
    /// SGLRP, single signed pass: seed `y_t (e_t - y)`.
    Sglrp {
        /// Rules.
        composite: Composite,
    },
    /// SGLRP as in the authors' code: target map minus the rescaled dual map.
    SglrpTwoPass {
        /// Rules.
        composite: Composite,
        /// Keep only the positive part of the result.
        positive_only: bool,
    },
    /// CLRP type 1 (Gu, Yang and Tresp 2018, "Understanding Individual Decisions of CNNs
    /// via Contrastive Backpropagation", ACCV): `max(0, R(S_t e_t) - R(dual))`.
    ///
    /// Plain LRP maps for different classes of one image look alike (they mostly follow
    /// the input's strong activations). CLRP subtracts the explanation of a *dual* virtual
    /// class that stands for "every other class" and keeps the positive part: what speaks
    /// for the target more than for the rest. Type 1's dual spreads the target score
    /// `S_t` evenly over the other classes; every rule being linear in its seed, the two
    /// walks are one walk seeded with [`Seed::Clrp1`].
    Clrp1 {
        /// Rules.
        composite: Composite,
    },
    /// CLRP type 2 (Gu et al. 2018): `max(0, R(model) - R(dual model))`, where the dual
    /// model has its output layer's weights and bias negated (the dual class "is" the
    /// opposite of the target). Only the output layer differs, so the difference of the
    /// two walks is walked once.
    Clrp2 {
        /// Rules.
        composite: Composite,
    },
}

impl Method {
    /// Whether the method is one recorded forward pass walked back (gradients and the
    /// LRP family): such maps are per-sample and can be computed a chunk at a time.
    fn walks_the_tape(&self) -> bool {
        !matches!(
            self,
            Method::SmoothGrad { .. }
                | Method::IntegratedGradients { .. }
                | Method::GradCam { .. }
                | Method::Occlusion { .. }
        )
    }

    /// The same method with its composite's rules on `path` (see [`crate::RecipePath`]);
    /// methods without a composite are returned unchanged.
    pub fn with_recipe_path(self, path: crate::RecipePath) -> Method {
        match self {
            Method::Lrp { composite, seed } => Method::Lrp {
                composite: composite.path(path),
                seed,
            },
            Method::Sglrp { composite } => Method::Sglrp {
                composite: composite.path(path),
            },
            Method::SglrpTwoPass {
                composite,
                positive_only,
            } => Method::SglrpTwoPass {
                composite: composite.path(path),
                positive_only,
            },
            Method::Clrp1 { composite } => Method::Clrp1 {
                composite: composite.path(path),
            },
            Method::Clrp2 { composite } => Method::Clrp2 {
                composite: composite.path(path),
            },
            other => other,
        }
    }

    /// The composite of an LRP-type method.
    pub fn composite(&self) -> Option<&Composite> {
        match self {
            Method::Lrp { composite, .. }
            | Method::Sglrp { composite }
            | Method::SglrpTwoPass { composite, .. }
            | Method::Clrp1 { composite }
            | Method::Clrp2 { composite } => Some(composite),
            _ => None,
        }
    }
}

/// The result of an attribution.
pub struct Attribution {
    /// Input relevance, the input's shape.
    pub relevance: Tensor,
    /// The model's logits.
    pub logits: Tensor,
    /// The explained class per sample.
    pub targets: Vec<usize>,
    /// Per-layer relevance sums and conservation errors.
    pub audit: Audit,
}

/// Explains `model` at `x` for `targets` with `method`.
///
/// Batches larger than one chunk ([`batching::chunk_len`]: up to [`batching::CHUNK`]
/// samples, one for an ImageNet-sized input) are explained a chunk at a time when the
/// method is per-sample (gradients and the LRP family): the same maps, faster.
pub fn explain(
    model: &dyn Module,
    x: &Tensor,
    targets: &Targets,
    method: &Method,
) -> Result<Attribution> {
    // On the pool, the kernels split their work from a worker thread (see
    // `relprop_core::kernels::split`).
    on_pool(|| {
        let n = x.shape().first().copied().unwrap_or(0);
        let chunk = batching::chunk_len(x);
        if n > chunk && method.walks_the_tape() {
            return batching::in_chunks(x, targets, chunk, |x, t| {
                explain_batch(model, x, t, method)
            });
        }
        explain_batch(model, x, targets, method)
    })
}

/// [`explain`] on the whole batch at once.
fn explain_batch(
    model: &dyn Module,
    x: &Tensor,
    targets: &Targets,
    method: &Method,
) -> Result<Attribution> {
    let mut rec = record(model, x)?;
    if let Some(composite) = method.composite() {
        rec.tape = composite.canonize(&rec.tape)?;
    }
    let logits = rec.logits().clone();
    let t = targets.resolve(&logits)?;
    let (relevance, audit) = match method {
        Method::Gradient | Method::GradientXInput => {
            let seed = Seed::OneHot.build(&logits, &t)?.seed;
            let (g, signals) = rec.walk(&seed, &Exact)?;
            let audit = Audit::new(
                "gradient",
                &rec.tape,
                rec.input,
                &[(vec![1.0; t.len()], &signals)],
                &seed,
            );
            match method {
                Method::Gradient => (g, audit),
                _ => (g.mul(x)?, audit),
            }
        }
        Method::Lrp { composite, seed } => {
            let built = seed.build(&logits, &t)?;
            lrp_pass(
                &rec,
                composite,
                &built.seed,
                built.notes,
                &format!("lrp {}", composite.name),
            )?
        }
        Method::Sglrp { composite } => {
            let built = Seed::SoftmaxGradient.build(&logits, &t)?;
            lrp_pass(
                &rec,
                composite,
                &built.seed,
                built.notes,
                &format!("sglrp {}", composite.name),
            )?
        }
        Method::Clrp1 { composite } => {
            let built = Seed::Clrp1.build(&logits, &t)?;
            let (r, mut audit) = lrp_pass(
                &rec,
                composite,
                &built.seed,
                built.notes,
                &format!("clrp1 {}", composite.name),
            )?;
            audit.notes.push(
                "CLRP keeps the positive part of the map; the audit shows the signed map".into(),
            );
            (r.relu(), audit)
        }
        Method::Clrp2 { composite } => contrastive::clrp2(&rec, composite, &logits, &t)?,
        Method::SglrpTwoPass {
            composite,
            positive_only,
        } => sglrp_two_pass(&rec, composite, &logits, &t, *positive_only)?,
        Method::SmoothGrad {
            samples,
            noise,
            seed,
        } => (
            attributors::smoothgrad(model, x, &t, *samples, *noise, *seed)?,
            Audit::default(),
        ),
        Method::IntegratedGradients { steps, baseline } => (
            attributors::integrated_gradients(model, x, &t, *steps, *baseline)?,
            Audit::default(),
        ),
        Method::GradCam { layer } => (
            attributors::grad_cam(model, x, &t, layer.as_deref())?,
            Audit::default(),
        ),
        Method::Occlusion { window, stride } => (
            attributors::occlusion(model, x, &t, *window, *stride)?,
            Audit::default(),
        ),
    };
    if !relevance.all_finite() {
        return Err(Error::invalid(
            "explain",
            "the attribution is not finite (is the input finite?)",
        ));
    }
    Ok(Attribution {
        relevance,
        logits,
        targets: t,
        audit,
    })
}

/// One LRP walk with `seed`: the input relevance and its audit.
fn lrp_pass(
    rec: &Recorded,
    composite: &Composite,
    seed: &Tensor,
    notes: Vec<String>,
    name: &str,
) -> Result<(Tensor, Audit)> {
    let rules = composite.resolve(&rec.tape);
    let (r, signals) = rec.walk(seed, &rules)?;
    let n = seed.shape()[0];
    let mut audit = Audit::new(
        name,
        &rec.tape,
        rec.input,
        &[(vec![1.0; n], &signals)],
        seed,
    );
    audit.notes = notes;
    Ok((r, audit))
}

/// Two-pass SGLRP: target map `T` (seed `(y_t(1-y_t) + 1e-8) e_t`) minus the dual map `O`
/// (seed `y_t y_n` on the other classes) rescaled so the result sums to exactly 0 per image.
fn sglrp_two_pass(
    rec: &Recorded,
    composite: &Composite,
    logits: &Tensor,
    t: &[usize],
    positive_only: bool,
) -> Result<(Tensor, Audit)> {
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let y = logits.softmax(1)?;
    let (mut target, mut dual) = (vec![0.0f32; n * c], vec![0.0f32; n * c]);
    let mut notes = Vec::new();
    for i in 0..n {
        let row = &y.data()[i * c..(i + 1) * c];
        let yt = row[t[i]];
        if yt == 1.0 {
            notes.push(format!(
                "sample {i}: softmax saturated (y_t = 1 in f32), map is zero"
            ));
            continue;
        }
        target[i * c + t[i]] = yt * (1.0 - yt) + 1e-8;
        for k in (0..c).filter(|&k| k != t[i]) {
            dual[i * c + k] = yt * row[k];
        }
    }
    let (target, dual) = (
        Tensor::from_vec(target, &[n, c])?,
        Tensor::from_vec(dual, &[n, c])?,
    );
    let rules = composite.resolve(&rec.tape);
    let (r_t, s_t) = rec.walk(&target, &rules)?;
    let (r_o, s_o) = rec.walk(&dual, &rules)?;
    let (sum_t, sum_o) = (
        crate::audit::per_sample_sums(&r_t),
        crate::audit::per_sample_sums(&r_o),
    );
    let per = r_t.numel() / n.max(1);
    let mut out = vec![0.0f32; r_t.numel()];
    let mut scale = vec![0.0f64; n];
    for i in 0..n {
        if sum_o[i] == 0.0 {
            if target.data()[i * c..(i + 1) * c].iter().any(|&v| v != 0.0) {
                notes.push(format!(
                    "sample {i}: the dual map sums to 0, so it cannot be rescaled; map is zero"
                ));
            }
            continue;
        }
        scale[i] = sum_t[i] / sum_o[i];
        let range = i * per..(i + 1) * per;
        for ((o, &t), &d) in out[range.clone()]
            .iter_mut()
            .zip(&r_t.data()[range.clone()])
            .zip(&r_o.data()[range])
        {
            *o = (t as f64 - scale[i] * d as f64) as f32;
        }
    }
    let mut r = Tensor::from_vec(out, r_t.shape())?;
    if positive_only {
        r = r.relu();
    }
    let combined_seed = target.sub(&dual.mul(&Tensor::from_vec(
        scale.iter().map(|&s| s as f32).collect(),
        &[n, 1],
    )?)?)?;
    let mut audit = Audit::new(
        &format!("sglrp-two-pass {}", composite.name),
        &rec.tape,
        rec.input,
        &[
            (vec![1.0; n], &s_t),
            (scale.iter().map(|s| -s).collect(), &s_o),
        ],
        &combined_seed,
    );
    audit.notes = notes;
    Ok((r, audit))
}
