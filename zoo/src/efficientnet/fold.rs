//! Folding EfficientNet-Lite0's BatchNorms into its convolutions once, when the weights
//! are loaded, rather than on every explanation.
//!
//! An eval-mode BatchNorm after a bias-free convolution is an affine map per output
//! channel `c`: with `s = gamma / sqrt(var + eps)`, the pair computes the convolution with
//! weight `w * s` and bias `beta - mean * s`. The scale is worked out in f64 and each
//! folded value rounded to f32 once.
//!
//! A state dict loads in either layout: the published one (BatchNorm entries, no conv
//! biases) is loaded and folded; a folded one (what `state_dict` of the folded model
//! gives: conv biases, no BatchNorm entries) loads as it is.

use super::{build, BatchNorms, Built, ConvBn, BN_EPS};
use relprop_core::{Rng, Tensor};
use relprop_nn::io::IoError;
use relprop_nn::state::{check_state, expected_shapes, load_state, state_dict};
use relprop_nn::{Module, Sequential};
use std::collections::{HashMap, HashSet};

/// The state dict of the folded network from `state`, one in the published layout: each
/// pair's convolution weight and BatchNorm entries become the folded weight and bias;
/// every other entry passes through unchanged. Errors name a missing or misshapen entry.
pub fn fold_state(
    state: &[(String, Tensor)],
    pairs: &[ConvBn],
) -> Result<Vec<(String, Tensor)>, IoError> {
    let by_name: HashMap<&str, &Tensor> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let get = |name: &str| {
        by_name
            .get(name)
            .copied()
            .ok_or_else(|| IoError::MissingParameter(name.to_string()))
    };
    let mut folded = Vec::with_capacity(2 * pairs.len());
    let mut consumed = HashSet::new();
    for ConvBn { conv, bn } in pairs {
        let weight_name = format!("{conv}.weight");
        let weight = get(&weight_name)?;
        let out = weight.shape().first().copied().unwrap_or(0);
        let per_channel = |suffix: &str| -> Result<&Tensor, IoError> {
            let name = format!("{bn}.{suffix}");
            let t = get(&name)?;
            if t.shape() != [out] {
                return Err(IoError::WrongShape {
                    name,
                    expected: vec![out],
                    found: t.shape().to_vec(),
                });
            }
            Ok(t)
        };
        let gamma = per_channel("weight")?;
        let beta = per_channel("bias")?;
        let mean = per_channel("running_mean")?;
        let var = per_channel("running_var")?;
        let (w, b) = fold_pair(weight, [gamma, beta, mean, var])
            .map_err(|e| IoError::malformed(format!("folding {bn} into {conv}"), e.to_string()))?;
        folded.push((weight_name.clone(), w));
        folded.push((format!("{conv}.bias"), b));
        consumed.insert(weight_name);
        for suffix in ["weight", "bias", "running_mean", "running_var"] {
            consumed.insert(format!("{bn}.{suffix}"));
        }
    }
    let mut out: Vec<(String, Tensor)> = state
        .iter()
        .filter(|(n, _)| !consumed.contains(n))
        .cloned()
        .collect();
    out.extend(folded);
    Ok(out)
}

/// One pair: weight `[out, ...]` and the BatchNorm's `[gamma, beta, mean, var]`, each
/// `[out]`, to the folded weight and bias.
fn fold_pair(
    weight: &Tensor,
    [gamma, beta, mean, var]: [&Tensor; 4],
) -> relprop_core::Result<(Tensor, Tensor)> {
    let eps = f64::from(BN_EPS);
    let scale: Vec<f64> = gamma
        .data()
        .iter()
        .zip(var.data())
        .map(|(&g, &v)| f64::from(g) / (f64::from(v) + eps).sqrt())
        .collect();
    // The shapes were checked against `[out]`; `max(1)` only keeps an empty weight from
    // dividing by zero (and `chunks` from a zero length): it then folds to nothing.
    let per_channel = weight.numel() / scale.len().max(1);
    let w: Vec<f32> = weight
        .data()
        .chunks(per_channel.max(1))
        .zip(&scale)
        .flat_map(|(row, &s)| row.iter().map(move |&v| (f64::from(v) * s) as f32))
        .collect();
    let b: Vec<f32> = beta
        .data()
        .iter()
        .zip(mean.data())
        .zip(&scale)
        .map(|((&beta, &m), &s)| (f64::from(beta) - f64::from(m) * s) as f32)
        .collect();
    Ok((
        Tensor::from_vec(w, weight.shape())?,
        Tensor::from_vec(b, &[scale.len()])?,
    ))
}

/// The folded network computing what `unfolded` (the [`BatchNorms::Separate`] variant,
/// weights loaded) computes at inference.
pub fn fold(unfolded: &dyn Module) -> Result<Sequential, IoError> {
    let Built { mut net, pairs } = build(BatchNorms::Folded, &mut Rng::new(0));
    load_state(&mut net, &fold_state(&state_dict(unfolded), &pairs)?, false)?;
    Ok(net)
}

/// The folded network with the weights of `state`, in either layout: the published one is
/// loaded into the BatchNorm variant (checked like any state dict) and folded, a folded one
/// loads directly. Entries neither layout has are errors unless `ignore_extra`. When
/// `state` fits neither, or mixes the two, the error says what each layout misses.
pub fn from_state(state: &[(String, Tensor)], ignore_extra: bool) -> Result<Sequential, IoError> {
    let Built {
        net: mut folded,
        pairs,
    } = build(BatchNorms::Folded, &mut Rng::new(0));
    let has = |name: String| state.iter().any(|(n, _)| *n == name);
    let with_bias = pairs.iter().find(|p| has(format!("{}.bias", p.conv)));
    let with_bn = pairs.iter().find(|p| has(format!("{}.running_var", p.bn)));
    if let (Some(conv), Some(bn)) = (with_bias, with_bn) {
        // A bias-carrying conv before a BatchNorm is not this network: refuse rather than
        // silently drop one of the two.
        return Err(IoError::malformed(
            "checkpoint",
            format!(
                "the weights mix the two efficientnet_lite0 layouts: {}.bias (folded) and {}.running_var (with BatchNorms)",
                conv.conv, bn.bn
            ),
        ));
    }
    let missing_folded = missing(&folded, state);
    if missing_folded.is_empty() {
        load_state(&mut folded, state, ignore_extra)?;
        return Ok(folded);
    }
    let separate = build(BatchNorms::Separate, &mut Rng::new(0)).net;
    let missing_separate = missing(&separate, state);
    if missing_separate.is_empty() {
        // Checked as the published network would check it, then folded straight from
        // the state dict (no detour through a loaded unfolded model). The fold passes
        // other entries through, and those were checked: nothing is left to refuse.
        check_state(&expected_shapes(&separate), state, ignore_extra)?;
        load_state(&mut folded, &fold_state(state, &pairs)?, true)?;
        return Ok(folded);
    }
    let list = |names: &[String]| {
        let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
        let more = names.len() - shown.len();
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{tail}", shown.join(", "))
    };
    Err(IoError::malformed(
        "checkpoint",
        format!(
            "the weights fit neither efficientnet_lite0 layout: the published one (with BatchNorms) lacks {}; the folded one lacks {}",
            list(&missing_separate),
            list(&missing_folded)
        ),
    ))
}

/// The names `net` expects that `state` lacks, in the network's order.
fn missing(net: &Sequential, state: &[(String, Tensor)]) -> Vec<String> {
    let have: HashSet<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    expected_shapes(net)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !have.contains(name.as_str()))
        .collect()
}
