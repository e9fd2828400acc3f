//! Composites: which rule each node of a recorded pass gets (Zennit's vocabulary).
//!
//! A [`Composite`] is a description (rules by layer kind, by position, by label); resolving
//! it against a tape gives a [`RuleMap`], the [`RuleSet`] the backward walk consults.

use crate::canonizer::{BatchNormFold, Canonizer};
use crate::rules::{BasicRule, Elementwise, Gradient, Norm, Pass, Unsupported};
use relprop_core::{Error, NodeId, Op, Result, Rule, RuleSet, Tape, Tensor};
use std::any::Any;
use std::sync::Arc;

/// Which implementation of the affine recipe the composite's [`BasicRule`]s run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecipePath {
    /// [`BasicRule::relevance`]: the recipe with its shortcuts (the default).
    #[default]
    Fast,
    /// [`BasicRule::reference_relevance`]: the recipe as written in
    /// [`crate::rules::affine`], nothing skipped or fused. For reading, and as the
    /// definition the fast path is tested against.
    Reference,
}

/// A mapped rule, with its reference-path twin when it is a [`BasicRule`].
#[derive(Clone)]
struct Mapped {
    fast: Arc<dyn Rule>,
    reference: Option<Arc<dyn Rule>>,
}

impl Mapped {
    fn new<R: Rule + 'static>(rule: R) -> Self {
        let reference = (&rule as &dyn Any)
            .downcast_ref::<BasicRule>()
            .map(|b| Arc::new(b.clone().reference()) as Arc<dyn Rule>);
        Mapped {
            fast: Arc::new(rule),
            reference,
        }
    }

    fn on(&self, path: RecipePath) -> Arc<dyn Rule> {
        match (path, &self.reference) {
            (RecipePath::Reference, Some(r)) => r.clone(),
            _ => self.fast.clone(),
        }
    }
}

/// Which affine layers a mapping applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Fully connected layers.
    Linear,
    /// Convolutions.
    Conv,
    /// Both.
    Any,
}

impl LayerKind {
    fn matches(self, op: &Op) -> bool {
        matches!(
            (self, op),
            (LayerKind::Linear | LayerKind::Any, Op::Linear { .. })
                | (LayerKind::Conv | LayerKind::Any, Op::Conv2d { .. })
        )
    }
}

/// A rule set described by layer kind, first layer and label, resolved per tape.
///
/// # Which rule a node gets (precedence)
///
/// This is the one place the order is defined; [`Composite::resolve`] follows it. For each
/// node of the recorded pass, the first of these that applies wins:
///
/// 1. **label**: a rule mapped with [`Composite::label`] to the node's label
///    (e.g. `features.conv2`); among several for one label, the first mapped;
/// 2. **op**: a rule mapped with [`Composite::op`] to the node's op name (e.g.
///    `max_pool2d`), the first mapped;
/// 3. **first layer** (linear and conv nodes only): the rule of
///    [`Composite::first_layer`], on the first affine node in recording order whose kind
///    matches among those no label or op rule claimed;
/// 4. **kind** (linear and conv nodes only): the first [`Composite::kind`] mapping whose
///    [`LayerKind`] matches; an affine node no mapping reaches gets [`Unsupported`], an
///    error when the walk reaches it;
/// 5. **default** (every other node): [`Pass`] for activations and scalar shifts,
///    [`Elementwise`] for `add`/`sub`/`mul`/`div`, [`Norm`] for average pooling,
///    [`Gradient`] for max pooling and shape changes, nothing for leaves, and
///    [`Unsupported`] for the rest.
///
/// A label rule on the model's first layer therefore passes the first-layer rule on to
/// the next affine node of the matching kind.
#[derive(Clone)]
pub struct Composite {
    /// Name shown in audits.
    pub name: String,
    by_label: Vec<(String, Mapped)>,
    first: Option<(LayerKind, Mapped)>,
    by_kind: Vec<(LayerKind, Mapped)>,
    by_op: Vec<(String, Mapped)>,
    canonizers: Vec<Arc<dyn Canonizer>>,
    path: RecipePath,
}

impl Composite {
    /// An empty composite: affine layers have no rule until one is mapped.
    pub fn new(name: impl Into<String>) -> Self {
        Composite {
            name: name.into(),
            by_label: vec![],
            first: None,
            by_kind: vec![],
            by_op: vec![],
            canonizers: vec![],
            path: RecipePath::Fast,
        }
    }

    /// Runs this composite's [`BasicRule`]s on `path` (other rules are unaffected): the
    /// same relevance either way, up to the order of floating-point sums.
    pub fn path(mut self, path: RecipePath) -> Self {
        self.path = path;
        self
    }

    /// The recipe path this composite's [`BasicRule`]s run on.
    pub fn recipe_path(&self) -> RecipePath {
        self.path
    }

    /// A named composite that folds BatchNorm first, as every built-in composite does.
    fn builtin(name: impl Into<String>) -> Self {
        Composite::new(name).canonizer(BatchNormFold)
    }

    /// Rewrites recorded passes with `c` before choosing rules (applied in order).
    pub fn canonizer(mut self, c: impl Canonizer + 'static) -> Self {
        self.canonizers.push(Arc::new(c));
        self
    }

    /// The same composite without canonizers: a BatchNorm node is then an error.
    pub fn without_canonizers(mut self) -> Self {
        self.canonizers.clear();
        self
    }

    /// Applies the canonizers to a recorded pass.
    pub fn canonize(&self, tape: &Tape) -> Result<Tape> {
        let mut t = tape.clone();
        for c in &self.canonizers {
            t = c.apply(&t)?;
        }
        Ok(t)
    }

    /// Uses `rule` for every affine layer of `kind` (earlier mappings win; see the
    /// precedence on [`Composite`]).
    pub fn kind(mut self, kind: LayerKind, rule: impl Rule + 'static) -> Self {
        self.by_kind.push((kind, Mapped::new(rule)));
        self
    }

    /// Uses `rule` for the first affine layer of `kind` in the recorded pass.
    pub fn first_layer(mut self, kind: LayerKind, rule: impl Rule + 'static) -> Self {
        self.first = Some((kind, Mapped::new(rule)));
        self
    }

    /// Uses `rule` for the node labelled `label` (takes precedence over everything else;
    /// see [`Composite`]).
    pub fn label(mut self, label: impl Into<String>, rule: impl Rule + 'static) -> Self {
        self.by_label.push((label.into(), Mapped::new(rule)));
        self
    }

    /// Uses `rule` for every node whose op is named `op` (e.g. `max_pool2d`), replacing the default.
    pub fn op(mut self, op: impl Into<String>, rule: impl Rule + 'static) -> Self {
        self.by_op.push((op.into(), Mapped::new(rule)));
        self
    }

    /// Epsilon(e) on every linear and conv layer.
    pub fn epsilon(e: f32) -> Self {
        Composite::builtin(format!("epsilon({e})")).kind(LayerKind::Any, BasicRule::epsilon(e))
    }

    /// LRP-0 on every linear and conv layer.
    pub fn zero() -> Self {
        Composite::builtin("zero").kind(LayerKind::Any, BasicRule::zero())
    }

    /// ZPlus on convolutions, Epsilon(e) on linear layers.
    pub fn epsilon_plus(e: f32) -> Self {
        Composite::builtin("epsilon-plus")
            .kind(LayerKind::Conv, BasicRule::zplus())
            .kind(LayerKind::Linear, BasicRule::epsilon(e))
    }

    /// EpsilonPlus with Flat on the first layer.
    pub fn epsilon_plus_flat(e: f32) -> Self {
        let mut c = Self::epsilon_plus(e).first_layer(LayerKind::Any, BasicRule::flat());
        c.name = "epsilon-plus-flat".into();
        c
    }

    /// AlphaBeta(2, 1) on convolutions, Epsilon(e) on linear layers.
    pub fn epsilon_alpha2_beta1(e: f32) -> Self {
        Composite::builtin("epsilon-alpha2-beta1")
            .kind(LayerKind::Conv, BasicRule::alpha_beta(2.0, 1.0))
            .kind(LayerKind::Linear, BasicRule::epsilon(e))
    }

    /// EpsilonAlpha2Beta1 with Flat on the first layer.
    pub fn epsilon_alpha2_beta1_flat(e: f32) -> Self {
        let mut c = Self::epsilon_alpha2_beta1(e).first_layer(LayerKind::Any, BasicRule::flat());
        c.name = "epsilon-alpha2-beta1-flat".into();
        c
    }

    /// ZBox(low, high) on the first convolution, Gamma(0.25) on other convolutions, Epsilon(e)
    /// on linear layers. (As in Zennit, an MLP has no first convolution: all Epsilon.)
    pub fn epsilon_gamma_box(low: Tensor, high: Tensor, e: f32) -> Self {
        Composite::builtin("epsilon-gamma-box")
            .first_layer(LayerKind::Conv, BasicRule::zbox(low, high))
            .kind(LayerKind::Conv, BasicRule::gamma(0.25))
            .kind(LayerKind::Linear, BasicRule::epsilon(e))
    }

    /// ZBox(low, high) on the first conv or linear layer, ZPlus on every other one: the rule
    /// set of the SGLRP paper (iNNvestigate's bounded deep Taylor).
    pub fn bounded_deep_taylor(low: Tensor, high: Tensor) -> Self {
        Composite::builtin("bounded-deep-taylor")
            .first_layer(LayerKind::Any, BasicRule::zbox(low, high))
            .kind(LayerKind::Any, BasicRule::zplus())
    }

    /// The composite named on the command line (`epsilon-plus`, `bounded-deep-taylor`, ...).
    pub fn by_name(name: &str, epsilon: f32, low: f32, high: f32) -> Result<Self> {
        let (l, h) = (Tensor::scalar(low), Tensor::scalar(high));
        Ok(match name {
            "zero" => Self::zero(),
            "epsilon" => Self::epsilon(epsilon),
            "epsilon-plus" => Self::epsilon_plus(epsilon),
            "epsilon-plus-flat" => Self::epsilon_plus_flat(epsilon),
            "epsilon-alpha2-beta1" => Self::epsilon_alpha2_beta1(epsilon),
            "epsilon-alpha2-beta1-flat" => Self::epsilon_alpha2_beta1_flat(epsilon),
            "epsilon-gamma-box" => Self::epsilon_gamma_box(l, h, epsilon),
            "bounded-deep-taylor" => Self::bounded_deep_taylor(l, h),
            _ => {
                return Err(Error::invalid(
                    "rules",
                    format!(
                        "unknown rule set '{name}' (expected one of: {})",
                        COMPOSITE_NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// Chooses a rule for every node of `tape`, in the precedence order documented on
    /// [`Composite`].
    pub fn resolve(&self, tape: &Tape) -> RuleMap {
        let mut first_seen = false;
        let rules = tape
            .nodes()
            .iter()
            .map(|node| {
                let label = node.label.as_deref();
                if let Some((_, r)) = self
                    .by_label
                    .iter()
                    .find(|(l, _)| Some(l.as_str()) == label)
                {
                    return Some(r.on(self.path));
                }
                if let Some((_, r)) = self.by_op.iter().find(|(o, _)| o == node.op.name()) {
                    return Some(r.on(self.path));
                }
                if matches!(node.op, Op::Linear { .. } | Op::Conv2d { .. }) {
                    if let Some((kind, r)) = &self.first {
                        if !first_seen && kind.matches(&node.op) {
                            first_seen = true;
                            return Some(r.on(self.path));
                        }
                    }
                    let r = self
                        .by_kind
                        .iter()
                        .find(|(k, _)| k.matches(&node.op))
                        .map(|(_, r)| r.on(self.path));
                    return Some(r.unwrap_or_else(|| Arc::new(Unsupported)));
                }
                default_rule(&node.op)
            })
            .collect();
        RuleMap { rules }
    }
}

/// The rule-set names accepted by [`Composite::by_name`].
pub const COMPOSITE_NAMES: [&str; 8] = [
    "zero",
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "epsilon-gamma-box",
    "bounded-deep-taylor",
];

/// Rules for the nodes between layers; ops that mix values without a rule get `Unsupported`.
fn default_rule(op: &Op) -> Option<Arc<dyn Rule>> {
    match op {
        Op::Leaf { .. } => None,
        Op::Relu(_)
        | Op::Tanh(_)
        | Op::Sigmoid(_)
        | Op::LeakyRelu(..)
        | Op::Clamp { .. }
        | Op::AddScalar(..)
        | Op::MulScalar(..) => Some(Arc::new(Pass)),
        Op::Add(..) | Op::Sub(..) | Op::Mul(..) | Op::Div(..) => Some(Arc::new(Elementwise)),
        Op::AvgPool2d { .. } => Some(Arc::new(Norm)),
        Op::MaxPool2d { .. }
        | Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Concat { .. }
        | Op::Pad { .. } => Some(Arc::new(Gradient)),
        _ => Some(Arc::new(Unsupported)),
    }
}

/// A rule for every node of one tape: the [`RuleSet`] an explanation walks back with.
#[derive(Clone)]
pub struct RuleMap {
    rules: Vec<Option<Arc<dyn Rule>>>,
}

impl RuleMap {
    /// Replaces the rule of node `id`.
    pub fn set(&mut self, id: NodeId, rule: Arc<dyn Rule>) {
        if id < self.rules.len() {
            self.rules[id] = Some(rule);
        }
    }
}

impl RuleMap {
    /// The name of the rule node `id` gets (`None`: the exact derivative).
    pub fn rule_name(&self, id: NodeId) -> Option<String> {
        self.rules
            .get(id)
            .and_then(|r| r.as_ref())
            .map(|r| r.name())
    }
}

impl RuleSet for RuleMap {
    fn rule_for(&self, _tape: &Tape, id: NodeId) -> Option<&dyn Rule> {
        self.rules.get(id).and_then(|r| r.as_deref())
    }
}
