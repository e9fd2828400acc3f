//! Weight initialisation, matching `torch.nn.init` and PyTorch's layer defaults.
//!
//! Every initialiser draws from a caller-supplied seeded [`Rng`], so a model built twice
//! from the same seed has the same weights. Fans follow PyTorch's
//! `_calculate_fan_in_and_fan_out`: for a weight `[out, in, k...]`, `fan_in = in * prod(k)`
//! and `fan_out = out * prod(k)`.

use relprop_core::{numel, Error, Result, Rng, Tensor};

/// Which fan Kaiming initialisation preserves the variance of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass (PyTorch's default).
    #[default]
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, k...]` (at least two dimensions).
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::shape(
            "init",
            &[shape],
            "fans need a weight with at least two dimensions, [out, in, ...]",
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// Fails on an empty fan, where every formula would divide by zero.
fn positive(fan: usize, shape: &[usize]) -> Result<f32> {
    if fan == 0 {
        return Err(Error::shape(
            "init",
            &[shape],
            "cannot initialise a weight with a zero fan",
        ));
    }
    Ok(fan as f32)
}

fn pick(shape: &[usize], mode: FanMode) -> Result<f32> {
    let (fan_in, fan_out) = fans(shape)?;
    positive(
        match mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
        },
        shape,
    )
}

/// Uniform in `[-bound, bound)` of the given shape.
pub fn uniform(shape: &[usize], bound: f32, rng: &mut Rng) -> Tensor {
    let data = (0..numel(shape))
        .map(|_| rng.uniform(-bound, bound))
        .collect();
    // The length equals the shape's element count by construction.
    Tensor::from_vec(data, shape).expect("uniform: length matches shape")
}

/// Normal with mean 0 and standard deviation `std` of the given shape.
pub fn normal(shape: &[usize], std: f32, rng: &mut Rng) -> Tensor {
    let data = (0..numel(shape)).map(|_| std * rng.normal()).collect();
    Tensor::from_vec(data, shape).expect("normal: length matches shape")
}

/// He (Kaiming) normal for ReLU networks: `N(0, 2 / fan)`, as
/// `kaiming_normal_(w, mode, nonlinearity="relu")`.
pub fn kaiming_normal(shape: &[usize], mode: FanMode, rng: &mut Rng) -> Result<Tensor> {
    let fan = pick(shape, mode)?;
    Ok(normal(shape, (2.0 / fan).sqrt(), rng))
}

/// He (Kaiming) uniform for ReLU networks: `U(±sqrt(6 / fan))`, as
/// `kaiming_uniform_(w, mode, nonlinearity="relu")`.
pub fn kaiming_uniform(shape: &[usize], mode: FanMode, rng: &mut Rng) -> Result<Tensor> {
    let fan = pick(shape, mode)?;
    Ok(uniform(shape, (6.0 / fan).sqrt(), rng))
}

/// Xavier (Glorot) normal: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f32, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    let total = positive(fan_in + fan_out, shape)?;
    Ok(normal(shape, gain * (2.0 / total).sqrt(), rng))
}

/// Xavier (Glorot) uniform: `U(±gain * sqrt(6 / (fan_in + fan_out)))`.
pub fn xavier_uniform(shape: &[usize], gain: f32, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    let total = positive(fan_in + fan_out, shape)?;
    Ok(uniform(shape, gain * (6.0 / total).sqrt(), rng))
}

/// PyTorch's default `Linear`/`Conv2d` weight: `kaiming_uniform_(w, a=sqrt(5))`, which
/// works out to `U(±1 / sqrt(fan_in))`.
pub fn default_weight(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
    let fan_in = pick(shape, FanMode::FanIn)?;
    Ok(uniform(shape, 1.0 / fan_in.sqrt(), rng))
}

/// PyTorch's default bias of a layer with `fan_in` inputs per unit: `U(±1 / sqrt(fan_in))`
/// of shape `[out]` (all zeros when `fan_in` is 0, as PyTorch's bound would be infinite).
pub fn default_bias(out: usize, fan_in: usize, rng: &mut Rng) -> Tensor {
    if fan_in == 0 {
        return Tensor::zeros(&[out]);
    }
    uniform(&[out], 1.0 / (fan_in as f32).sqrt(), rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(t: &Tensor) -> f32 {
        let n = t.numel() as f64;
        let mean = t.data().iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = t
            .data()
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() as f32
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[10, 20]).unwrap(), (20, 10));
        assert_eq!(fans(&[6, 3, 5, 5]).unwrap(), (75, 150));
        assert!(fans(&[4]).is_err());
        assert!(kaiming_normal(&[0, 0], FanMode::FanIn, &mut Rng::new(0)).is_err());
    }

    #[test]
    fn spreads_match_formulas() {
        let mut rng = Rng::new(1);
        let shape = [200, 50, 3, 3]; // fan_in 450, fan_out 1800
        let k = kaiming_normal(&shape, FanMode::FanIn, &mut rng).unwrap();
        assert!((std_of(&k) / (2.0f32 / 450.0).sqrt() - 1.0).abs() < 0.02);
        let ku = kaiming_uniform(&shape, FanMode::FanOut, &mut rng).unwrap();
        let bound = (6.0f32 / 1800.0).sqrt();
        assert!(ku.max_abs() <= bound);
        assert!((std_of(&ku) / (bound / 3f32.sqrt()) - 1.0).abs() < 0.02);
        let x = xavier_normal(&shape, 1.0, &mut rng).unwrap();
        assert!((std_of(&x) / (2.0f32 / 2250.0).sqrt() - 1.0).abs() < 0.02);
        let xu = xavier_uniform(&shape, 2.0, &mut rng).unwrap();
        assert!(xu.max_abs() <= 2.0 * (6.0f32 / 2250.0).sqrt());
        let d = default_weight(&[8, 16], &mut rng).unwrap();
        assert!(d.max_abs() <= 0.25);
        let b = default_bias(8, 16, &mut rng);
        assert_eq!(b.shape(), &[8]);
        assert!(b.max_abs() <= 0.25);
    }

    #[test]
    fn same_seed_same_weights() {
        let a = kaiming_normal(&[3, 4], FanMode::FanIn, &mut Rng::new(9)).unwrap();
        let b = kaiming_normal(&[3, 4], FanMode::FanIn, &mut Rng::new(9)).unwrap();
        assert_eq!(a, b);
    }
}
