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
    println!(
        "softplus: backward {:.6}, finite differences {:.6}, relative error {:.2e}",
        report.analytic,
        report.numeric,
        report.error()
    );
    Ok(())
}
