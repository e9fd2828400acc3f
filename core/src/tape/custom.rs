//! User-defined ops: a forward function and, optionally, its vector-Jacobian product.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// An op the core does not know, recorded as one node with [`crate::Tape::custom`].
///
/// `backward` receives the input values, the output value and the signal arriving at the
/// output, and returns one signal per input (`None` where no signal flows). The default
/// says plainly that the op has no backward, so a walk that reaches it fails with a clear
/// error instead of silently dropping the signal.
///
/// ```
/// use relprop_core::{CustomOp, Result, Tape, Tensor, Exact};
///
/// /// `y = x^3`, whose derivative is `3 x^2`.
/// #[derive(Debug)]
/// struct Cube;
///
/// impl CustomOp for Cube {
///     fn name(&self) -> &str { "cube" }
///     fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
///         Ok(inputs[0].map(|v| v * v * v))
///     }
///     fn backward(&self, inputs: &[&Tensor], _out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
///         Ok(vec![Some(g.mul(&inputs[0].map(|v| 3.0 * v * v))?)])
///     }
/// }
///
/// let mut tape = Tape::new();
/// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
/// let y = tape.custom(Cube, &[x])?;
/// let signals = tape.backward(y, &Tensor::ones(&[2]), &Exact)?;
/// assert_eq!(signals.get(x).unwrap().data(), &[3.0, 12.0]);
/// # Ok::<(), relprop_core::Error>(())
/// ```
pub trait CustomOp: Send + Sync {
    /// Name used in errors and audits.
    fn name(&self) -> &str;

    /// Computes the output from the input values.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;

    /// The vector-Jacobian product: one signal per input.
    fn backward(
        &self,
        inputs: &[&Tensor],
        output: &Tensor,
        grad_out: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let _ = (inputs, output, grad_out);
        Err(Error::Backward {
            op: self.name().to_string(),
            reason: "this custom op defines no backward (implement CustomOp::backward)".into(),
        })
    }
}
