//! The JSON API's answers, computed on the worker threads: `models`, `explain`,
//! `predict`, and the bundled `digit`, `composite` and `photos` inputs.
//!
//! `explain` builds its method with the same function as `relprop explain`
//! ([`method_named`]) and explains with the same call ([`attribute`]), so the relevance it
//! returns is the one `relprop explain --out` writes for the same input and options.

use super::inputs;
use super::models::Served;
use super::workers::Workers;
use crate::cli::error::CliError;
use crate::cli::explain::{
    attribute, default_rules, is_lrp_like, method_named, MethodOptions, METHODS,
};
use relprop::core::Tensor;
use relprop::explain::{Attribution, Targets};
use relprop::nn::train::predict;
use serde_json::{json, Value};
use std::time::Instant;

/// What every handler shares.
pub struct AppState {
    /// The served models, in the order `/api/models` lists them.
    pub models: Vec<Served>,
    /// The bounded pool explanations run on.
    pub workers: Workers,
}

impl AppState {
    /// The served model called `name`, or a 400 listing the served names.
    pub fn model(&self, name: &str) -> Result<&Served, ApiError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            ApiError::bad(format!(
                "unknown model '{name}' (served: {})",
                names.join(", ")
            ))
        })
    }
}

/// An error answer: an HTTP status and one message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// One clear message.
    pub message: String,
}

impl ApiError {
    /// A bad request (400).
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    /// A failure inside relprop (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            message: message.into(),
        }
    }
}

impl From<CliError> for ApiError {
    fn from(e: CliError) -> Self {
        // The command line's exit code 2 is the user's input; anything else is relprop's.
        match e.code {
            2 => ApiError::bad(e.message),
            _ => ApiError::internal(e.message),
        }
    }
}

impl From<relprop::core::Error> for ApiError {
    fn from(e: relprop::core::Error) -> Self {
        CliError::from(e).into()
    }
}

/// `GET /api/models`.
pub fn models(state: &AppState) -> Value {
    let list: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            let mut entry = json!({"name": m.name, "input_shape": m.shape, "classes": m.classes});
            if m.takes_photos {
                // The ImageNet model: the page names its top classes and offers photos.
                entry["class_names"] = json!(relprop::zoo::imagenet::class_names());
            }
            entry
        })
        .collect();
    Value::Array(list)
}

/// `GET /api/methods`: the method and rule-set names, and each method's default rules.
pub fn methods() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|&m| {
            json!({
                "name": m,
                "takes_rules": is_lrp_like(m),
                "default_rules": is_lrp_like(m).then(|| default_rules(m)),
            })
        })
        .collect();
    json!({"methods": methods, "rules": relprop::explain::COMPOSITE_NAMES})
}

/// Softmax of one row of logits, in f64 for a stable sum.
fn probabilities(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let exps: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// The index of the largest value (the first of equals).
fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// `POST /api/explain`.
pub fn explain(state: &AppState, body: &[u8]) -> Result<Value, ApiError> {
    let start = Instant::now();
    let request = inputs::parse(body)?;
    let served = state.model(&request.model)?;
    let name = request.method.as_deref().ok_or_else(|| {
        ApiError::bad(format!(
            "missing \"method\" (one of: {})",
            METHODS.join(", ")
        ))
    })?;
    let method = method_named(name, request.rules.as_deref(), &MethodOptions::default())?;
    if let Some(t) = request.target {
        if t >= served.classes {
            return Err(ApiError::bad(format!(
                "target {t} is not a class of {} (0 to {})",
                served.name,
                served.classes - 1
            )));
        }
    }
    let x = inputs::batch(&request, served)?;
    let targets = request.target.map_or(Targets::Argmax, Targets::Class);
    let a = attribute(&served.model, &x, &targets, &method)?;
    if !a.relevance.all_finite() {
        return Err(ApiError::bad(
            "the map is not finite (the input may be far outside the model's range)",
        ));
    }
    let rules = is_lrp_like(name).then(|| request.rules.as_deref().unwrap_or(default_rules(name)));
    Ok(explanation(served, name, rules, &a, start))
}

/// The answer of `explain`.
fn explanation(
    served: &Served,
    method: &str,
    rules: Option<&str>,
    a: &Attribution,
    start: Instant,
) -> Value {
    let logits = a.logits.data();
    let audit: Vec<Value> = a
        .audit
        .rows
        .iter()
        .map(|r| {
            json!({
                "label": r.label,
                "op": r.op,
                "sum": r.sums.first().copied().unwrap_or(0.0),
                "error": r.errors.first().copied().unwrap_or(0.0),
            })
        })
        .collect();
    json!({
        "model": served.name,
        "method": method,
        "rules": rules,
        "predicted": argmax(logits),
        "target": a.targets.first().copied().unwrap_or(0),
        "probabilities": probabilities(logits),
        "relevance": {"shape": served.shape, "data": a.relevance.data()},
        "seed_sum": a.audit.seed_sums.first().copied().unwrap_or(0.0),
        "seed_abs": a.audit.seed_abs.first().copied().unwrap_or(0.0),
        "audit": audit,
        "notes": a.audit.notes,
        "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
    })
}

/// `POST /api/predict`: the same forward pass as `relprop predict`.
pub fn predict_answer(state: &AppState, body: &[u8]) -> Result<Value, ApiError> {
    let request = inputs::parse(body)?;
    let served = state.model(&request.model)?;
    let x = inputs::batch(&request, served)?;
    let logits: Tensor = predict(served.model.module(), &x, 1)?;
    Ok(json!({
        "predicted": argmax(logits.data()),
        "probabilities": probabilities(logits.data()),
    }))
}

/// `GET /api/digit?class=C&index=I`.
pub fn digit(class: usize, index: usize) -> Result<Value, ApiError> {
    let (label, data) = inputs::digit(class, index)?;
    Ok(json!({"label": label, "shape": [1, 28, 28], "data": data}))
}

/// `GET /api/photos`: the bundled photos' names and subjects.
pub fn photos() -> Value {
    let list: Vec<Value> = relprop::zoo::photos::PHOTOS
        .iter()
        .map(|p| json!({"name": p.name, "subject": p.subject}))
        .collect();
    Value::Array(list)
}

/// `GET /api/photos/NAME`: the bundled photo as the ImageNet model's input.
pub fn photo(name: &str) -> Result<Value, ApiError> {
    let data = inputs::photo(name)?;
    let side = relprop::zoo::photos::CROP;
    Ok(json!({"name": name, "shape": [3, side, side], "data": data}))
}

/// `GET /api/composite?left=A&right=B&index=I` or `GET /api/composite?seed=S`.
pub fn composite(pair: Option<(usize, usize)>, index: usize, seed: u64) -> Result<Value, ApiError> {
    let (labels, data) = inputs::composite(pair, index, seed)?;
    let side = relprop::zoo::pairs::CANVAS;
    Ok(json!({"labels": labels, "shape": [1, side, side], "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_follow_the_logits() {
        let p = probabilities(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[1] > p[2] && p[2] > p[0]);
        assert!((p[1] / p[2] - std::f64::consts::E).abs() < 1e-9);
        // Large logits do not overflow.
        let p = probabilities(&[1.0, 1000.0]);
        assert_eq!(p, vec![0.0, 1.0]);
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 1000.0]), 3);
        assert_eq!(argmax(&[2.0, 2.0]), 0);
    }
}
