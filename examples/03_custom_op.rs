//! Lesson 3: your own op.
//!
//! A `CustomOp` supplies a forward function and a vector-Jacobian product (VJP): given the
//! signal g at the output, return J^T g for each input. We write softplus,
//! `y = ln(1 + e^x)`, whose derivative is the sigmoid, and check it with `gradcheck`.
//! Run: `cargo run --release --example 03_custom_op`.

use relprop::core::{gradcheck, CustomOp, GradcheckOptions, Result, Tensor};

struct Softplus;

impl CustomOp for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        // max(x, 0) + ln(1 + e^-|x|) is the same function, without overflow for large x.
        Ok(inputs[0].map(|x| x.max(0.0) + (-x.abs()).exp().ln_1p()))
    }

    fn backward(
        &self,
        inputs: &[&Tensor],
        _output: &Tensor,
        g: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        // dy/dx = sigmoid(x); the VJP multiplies it elementwise with the incoming signal.
        let sigmoid = inputs[0].map(|x| 1.0 / (1.0 + (-x).exp()));
        Ok(vec![Some(g.mul(&sigmoid)?)])
    }
}

fn main() -> Result<()> {
    let x = Tensor::rand_uniform(&[2, 5], -3.0, 3.0, 7);
    // gradcheck records the function on a fresh tape, runs backward, and compares with a
    // central finite difference along a random direction.
    let report = gradcheck(
        |tape, ids| tape.custom(Softplus, &[ids[0]]),
        &[x],
        GradcheckOptions::default(),
    )?;
    // The check compares two numbers: <J^T u, v> from the backward walk, and the same from
    // finite differences. They differ for two reasons: the op could be wrong, or the finite
    // difference itself is inexact, because f32 outputs carry rounding error that the
    // division by 2h magnifies. gradcheck estimates the latter (`noise`) and grants it
    // before judging, so the corrected error is 0 whenever the raw gap is within rounding.
    let raw = (report.analytic - report.numeric).abs() / report.scale;
    println!(
        "softplus: backward {:.6}, finite differences {:.6}",
        report.analytic, report.numeric
    );
    println!(
        "raw relative error {raw:.2e}; rounding noise of the finite difference {:.2e}; error after granting it {:.2e}",
        report.noise / report.scale,
        report.error()
    );
    assert!(
        report.error() < 1e-3,
        "softplus's backward disagrees with finite differences"
    );
    Ok(())
}
