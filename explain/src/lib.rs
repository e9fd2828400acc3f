//! relprop-explain: LRP rules as alternative backward functions, composites, SGLRP and CLRP
//! seeds, gradient baselines, a per-layer relevance audit, and heatmaps.
//!
//! # Reading order
//!
//! 1. `relprop_core::tape::backward`: the backward walk and the [`relprop_core::Rule`] /
//!    [`relprop_core::RuleSet`] traits it consults at every node.
//! 2. [`rules::affine`]: the one recipe of every affine LRP rule (modify, z, `s = R / z`,
//!    `c = VJP(s)`, `R = x * c`), its derivation, why it conserves, and the reference
//!    implementation ([`rules::Group::reference_relevance`]).
//! 3. [`rules::family`]: each rule (LRP-0, Epsilon, ZPlus, AlphaBeta, Gamma, ZBox, WSquare,
//!    Flat) as a configuration of the recipe, with its formula, use and citation; and
//!    [`rules`] for the rules between layers (Pass, Norm, Gradient).
//! 4. [`composite`]: which rule each node gets (the precedence is documented on
//!    [`Composite`]).
//! 5. [`seed`]: the seed on the logits, where LRP, SGLRP ([`Seed::SoftmaxGradient`], with
//!    its derivation from the softmax) and CLRP ([`Seed::Clrp1`], [`Method::Clrp2`]) differ.
//! 6. [`audit`] and [`mod@verify`]: where the relevance went, layer by layer, and whether it
//!    was conserved.

#![warn(missing_docs)]

pub mod attributors;
pub mod audit;
pub mod batching;
pub mod canonizer;
pub mod composite;
mod contrastive;
pub mod graph;
pub mod heatmap;
pub mod layers;
pub mod method;
pub mod metrics;
pub mod rules;
pub mod seed;
pub mod verify;

pub use audit::{Audit, AuditRow};
pub use canonizer::{BatchNormFold, Canonizer};
pub use composite::{Composite, LayerKind, RecipePath, RuleMap, COMPOSITE_NAMES};
pub use graph::{graph_dot, tape_dot};
pub use layers::{explain_layers, LayerMaps, Neuron};
pub use method::{explain, record, Attribution, Method, Recorded};
pub use rules::{BasicRule, Elementwise, Gradient, Norm, Pass, Reference, Unsupported};
pub use seed::{Seed, Targets};
pub use verify::{verify, verify_recorded, LayerCheck, Verification};
