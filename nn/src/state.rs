//! Loading and reading a module's state (parameters and buffers) by `state_dict` name.

use crate::io::IoError;
use crate::module::Module;
use relprop_core::Tensor;

/// Every parameter and buffer of `module` as `(name, value)`, in the module's order.
pub fn state_dict(module: &dyn Module) -> Vec<(String, Tensor)> {
    module
        .params()
        .into_iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

/// Names and shapes the module expects, for validating files before loading them.
pub fn expected_shapes(module: &dyn Module) -> Vec<(String, Vec<usize>)> {
    module
        .params()
        .into_iter()
        .map(|p| (p.name.clone(), p.value.shape().to_vec()))
        .collect()
}

/// Checks `state` against the expected names and shapes: every expected parameter present
/// with its shape and finite values, BatchNorm running variances (`*.running_var`) not
/// negative, and (unless `allow_extra`) nothing else.
pub fn check_state(
    expected: &[(String, Vec<usize>)],
    state: &[(String, Tensor)],
    allow_extra: bool,
) -> Result<(), IoError> {
    for (name, shape) in expected {
        let (_, t) = state
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| IoError::MissingParameter(name.clone()))?;
        if t.shape() != shape.as_slice() {
            return Err(IoError::WrongShape {
                name: name.clone(),
                expected: shape.clone(),
                found: t.shape().to_vec(),
            });
        }
        if !t.all_finite() {
            return Err(IoError::NonFinite { name: name.clone() });
        }
        // A negative running variance makes evaluation-mode BatchNorm take the square
        // root of a negative number: every activation after it would be NaN.
        if name.ends_with(".running_var") {
            if let Some(v) = t.data().iter().find(|&&v| v < 0.0) {
                return Err(IoError::malformed(
                    format!("parameter {name}"),
                    format!("a running variance must be >= 0, found {v}"),
                ));
            }
        }
    }
    if !allow_extra {
        if let Some((name, _)) = state
            .iter()
            .find(|(n, _)| !expected.iter().any(|(e, _)| e == n))
        {
            return Err(IoError::UnexpectedParameter(name.clone()));
        }
    }
    Ok(())
}

/// Replaces the module's parameters and buffers with `state`, matched by name.
///
/// Every parameter of the module must be present with its shape and finite values. Entries
/// the module does not have are ignored when they are not float tensors the module could
/// use (e.g. `x`, `logits` in a fixture file) only if `ignore_extra` is set; otherwise they
/// are [`IoError::UnexpectedParameter`]. Nothing is changed unless everything checks out.
pub fn load_state(
    module: &mut dyn Module,
    state: &[(String, Tensor)],
    ignore_extra: bool,
) -> Result<(), IoError> {
    check_state(&expected_shapes(module), state, ignore_extra)?;
    for p in module.params_mut() {
        if let Some((_, t)) = state.iter().find(|(n, _)| *n == p.name) {
            p.value = t.clone();
        }
    }
    Ok(())
}
