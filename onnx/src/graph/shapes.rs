//! Shape arithmetic shared by constant folding and recording: axes, reshape targets,
//! squeeze/unsqueeze/flatten, in ONNX's conventions (negative axes count from the end).

use super::error::ImportError;

/// Axis `a` of a rank-`rank` value, negative counting from the end.
pub(crate) fn axis(node: &str, a: i64, rank: usize) -> Result<usize, ImportError> {
    let r = rank as i64;
    let k = if a < 0 { a + r } else { a };
    if (0..r).contains(&k) {
        Ok(k as usize)
    } else {
        Err(ImportError::invalid(
            node,
            format!("axis {a} is out of range for a rank-{rank} value"),
        ))
    }
}

/// The target shape of `Reshape`: `0` copies the input's dimension (unless `allowzero`),
/// one `-1` takes what is left.
pub(crate) fn reshape_target(
    node: &str,
    input: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, ImportError> {
    let total: usize = input.iter().product();
    let bad = |why: String| {
        ImportError::invalid(node, format!("reshape of {input:?} to {spec:?}: {why}"))
    };
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| bad("a 0 has no input dimension to copy".into()))?,
            ),
            d if d >= 0 => {
                out.push(usize::try_from(d).map_err(|_| bad("dimension too large".into()))?)
            }
            _ => return Err(bad("invalid dimension".into())),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("the size overflows".into()))?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(bad("the sizes do not divide".into()));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(bad("the number of elements differs".into()));
    }
    Ok(out)
}

/// `Flatten` at `axis`: `[prod(dims[..axis]), prod(dims[axis..])]`.
pub(crate) fn flatten(node: &str, dims: &[usize], a: i64) -> Result<Vec<usize>, ImportError> {
    let r = dims.len() as i64;
    let k = if a < 0 { a + r } else { a };
    if !(0..=r).contains(&k) {
        return Err(ImportError::invalid(
            node,
            format!("flatten axis {a} is out of range"),
        ));
    }
    let k = k as usize;
    Ok(vec![dims[..k].iter().product(), dims[k..].iter().product()])
}

/// `Squeeze`: drops the listed axes (each must be 1), or every 1 when none are listed.
pub(crate) fn squeeze(
    node: &str,
    dims: &[usize],
    axes: Option<&[i64]>,
) -> Result<Vec<usize>, ImportError> {
    let drop: Vec<usize> = match axes {
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
        Some(a) => a
            .iter()
            .map(|&x| axis(node, x, dims.len()))
            .collect::<Result<_, _>>()?,
    };
    if let Some(&i) = drop.iter().find(|&&i| dims[i] != 1) {
        return Err(ImportError::invalid(
            node,
            format!("cannot squeeze axis {i} of {dims:?}"),
        ));
    }
    Ok(dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, &d)| d)
        .collect())
}

/// `Unsqueeze`: inserts 1s at the listed axes of the output.
pub(crate) fn unsqueeze(
    node: &str,
    dims: &[usize],
    axes: &[i64],
) -> Result<Vec<usize>, ImportError> {
    let rank = dims.len() + axes.len();
    let mut at: Vec<usize> = axes
        .iter()
        .map(|&a| axis(node, a, rank))
        .collect::<Result<_, _>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err(ImportError::invalid(node, "repeated unsqueeze axis"));
    }
    let mut rest = dims.iter();
    Ok((0..rank)
        .map(|i| {
            if at.contains(&i) {
                1
            } else {
                *rest.next().unwrap_or(&1)
            }
        })
        .collect())
}

/// A permutation (`Transpose`'s `perm`, reversed axes by default), checked.
pub(crate) fn permutation(
    node: &str,
    rank: usize,
    perm: Option<&[i64]>,
) -> Result<Vec<usize>, ImportError> {
    let p: Vec<usize> = match perm {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&a| axis(node, a, rank))
            .collect::<Result<_, _>>()?,
    };
    let mut seen = vec![false; rank];
    if p.len() != rank || p.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
        return Err(ImportError::invalid(
            node,
            format!("{perm:?} is not a permutation of {rank} axes"),
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        assert_eq!(
            reshape_target("r", &[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(
            reshape_target("r", &[2, 3, 4], &[-1, 4], true).unwrap(),
            vec![6, 4]
        );
        assert!(reshape_target("r", &[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_target("r", &[2, 3, 4], &[-1, -1], false).is_err());
        assert!(reshape_target("r", &[2, 3], &[i64::MAX, 2], false).is_err());
    }

    #[test]
    fn squeeze_unsqueeze_flatten_and_permutations() {
        assert_eq!(squeeze("s", &[2, 1, 3, 1], None).unwrap(), vec![2, 3]);
        assert_eq!(
            squeeze("s", &[2, 1, 3, 1], Some(&[-1])).unwrap(),
            vec![2, 1, 3]
        );
        assert!(squeeze("s", &[2, 1], Some(&[0])).is_err());
        assert_eq!(unsqueeze("u", &[2, 3], &[0, 3]).unwrap(), vec![1, 2, 3, 1]);
        assert_eq!(flatten("f", &[2, 3, 4], 1).unwrap(), vec![2, 12]);
        assert_eq!(flatten("f", &[2, 3, 4], 0).unwrap(), vec![1, 24]);
        assert_eq!(permutation("t", 3, None).unwrap(), vec![2, 1, 0]);
        assert!(permutation("t", 3, Some(&[0, 0, 1])).is_err());
        assert!(axis("a", 4, 4).is_err());
    }
}
