//! relprop-explain: LRP rules as alternative backward functions, composites, SGLRP and CLRP
//! seeds, gradient baselines, a per-layer relevance audit, and heatmaps.

#![warn(missing_docs)]

pub mod attributors;
pub mod audit;
pub mod batching;
pub mod canonizer;
pub mod composite;
mod contrastive;
pub mod heatmap;
pub mod layers;
pub mod method;
pub mod metrics;
pub mod rules;
pub mod seed;
pub mod verify;

pub use audit::{Audit, AuditRow};
pub use canonizer::{BatchNormFold, Canonizer};
pub use composite::{Composite, LayerKind, RuleMap, COMPOSITE_NAMES};
pub use layers::{explain_layers, LayerMaps, Neuron};
pub use method::{explain, record, Attribution, Method, Recorded};
pub use rules::{BasicRule, Elementwise, Gradient, Norm, Pass, Unsupported};
pub use seed::{Seed, Targets};
pub use verify::{verify, verify_recorded, LayerCheck, Verification};
