//! Shape-checked tensor entry points to the numeric kernels: matmul, linear, conv2d and
//! pooling, forward and backward. The checks live here so the kernels can trust lengths.

use super::conv_spec::conv_geom;
pub use super::conv_spec::Conv2dSpec;
use super::Tensor;
use crate::error::{Error, Result};
use crate::kernels::conv;
use crate::kernels::conv_fused;
use crate::kernels::conv_general as general;
use crate::kernels::gemm::gemm;
use crate::kernels::pool::{self, Pool2dGeom};

/// Window, stride and padding of a 2-D pooling, per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dSpec {
    /// Window size `[rows, cols]`.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding on each side; at most half the window, as in PyTorch.
    pub padding: [usize; 2],
}

impl Pool2dSpec {
    /// Square window `k`, stride `s`, padding `p` on both axes.
    pub fn new(k: usize, s: usize, p: usize) -> Self {
        Pool2dSpec {
            kernel: [k; 2],
            stride: [s; 2],
            padding: [p; 2],
        }
    }
}

/// Validates pooling shapes and returns the kernel geometry.
pub(crate) fn pool_geom(op: &'static str, x: &[usize], spec: &Pool2dSpec) -> Result<Pool2dGeom> {
    let [n, c, h, w] = match *x {
        [n, c, h, w] => [n, c, h, w],
        _ => return Err(Error::shape(op, &[x], "the input must be [N, C, H, W]")),
    };
    let [kh, kw] = spec.kernel;
    if kh == 0 || kw == 0 || spec.stride.contains(&0) {
        return Err(Error::invalid(op, "kernel and stride must be at least 1"));
    }
    if 2 * spec.padding[0] > kh || 2 * spec.padding[1] > kw {
        return Err(Error::invalid(op, "padding may be at most half the kernel"));
    }
    if h + 2 * spec.padding[0] < kh || w + 2 * spec.padding[1] < kw {
        return Err(Error::shape(
            op,
            &[x],
            format!("a {kh}x{kw} window does not fit the padded input"),
        ));
    }
    Ok(Pool2dGeom {
        n,
        c,
        h,
        w,
        kh,
        kw,
        stride: spec.stride,
        padding: spec.padding,
    })
}

impl Tensor {
    /// Matrix product `op(self) * op(other)`, with optional transposes (stride swaps, no copy).
    /// Shapes: `[m, k] x [k, n]`, or batched `[b, m, k] x [b, k, n]`, or `[b, m, k] x [k, n]`.
    pub fn matmul_t(&self, trans_a: bool, other: &Tensor, trans_b: bool) -> Result<Tensor> {
        let fail = |why: &str| Err(Error::shape("matmul", &[self.shape(), other.shape()], why));
        let (batch, a2) = match *self.shape() {
            [m, k] => (1, [m, k]),
            [b, m, k] => (b, [m, k]),
            _ => return fail("matmul takes 2-D or 3-D operands"),
        };
        let (b_batched, b2) = match *other.shape() {
            [k, n] => (false, [k, n]),
            [b, k, n] if b == batch && self.rank() == 3 => (true, [k, n]),
            _ => return fail("the second operand must be 2-D or have the same batch as the first"),
        };
        let (m, k) = if trans_a {
            (a2[1], a2[0])
        } else {
            (a2[0], a2[1])
        };
        let (kb, n) = if trans_b {
            (b2[1], b2[0])
        } else {
            (b2[0], b2[1])
        };
        if k != kb {
            return fail(&format!("inner dimensions differ ({k} vs {kb})"));
        }
        let mut out = vec![0.0; batch * m * n];
        for i in 0..batch {
            let a = &self.data()[i * m * k..(i + 1) * m * k];
            let b = if b_batched {
                &other.data()[i * k * n..(i + 1) * k * n]
            } else {
                other.data()
            };
            gemm(
                m,
                k,
                n,
                1.0,
                a,
                trans_a,
                b,
                trans_b,
                0.0,
                &mut out[i * m * n..(i + 1) * m * n],
            )
            .map_err(|why| Error::invalid("matmul", why))?;
        }
        let shape = if self.rank() == 3 {
            vec![batch, m, n]
        } else {
            vec![m, n]
        };
        Ok(Tensor::raw(out, shape))
    }

    /// Matrix product `self * other` (see [`Tensor::matmul_t`] for the shapes).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(false, other, false)
    }

    /// PyTorch's linear layer: `x [n, in]`, `w [out, in]`, `b [out]`; `y = x W^T + b`.
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = [Some(self.shape()), Some(w.shape()), b.map(|b| b.shape())]
            .into_iter()
            .flatten()
            .collect();
        match (self.shape(), w.shape()) {
            ([_, i], [o, wi]) if i == wi => {
                if b.is_some_and(|b| b.shape() != [*o]) {
                    return Err(Error::shape(
                        "linear",
                        &shapes,
                        format!("the bias must have shape [{o}]"),
                    ));
                }
            }
            _ => {
                return Err(Error::shape(
                    "linear",
                    &shapes,
                    "expected x [n, in] and w [out, in] with matching in",
                ))
            }
        }
        let y = self.matmul_t(false, w, true)?;
        match b {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }

    /// 2-D cross-correlation (PyTorch's conv2d): `x [n, c, h, w]`, `w [out, c / groups, kh, kw]`,
    /// `b [out]`, with the stride, padding, dilation and groups of `spec`.
    pub fn conv2d(&self, w: &Tensor, b: Option<&Tensor>, spec: &Conv2dSpec) -> Result<Tensor> {
        let g = conv_geom(self.shape(), w.shape(), b.map(|b| b.shape()), spec)?;
        let mut out = vec![0.0; g.n * g.c_out * g.out_h() * g.out_w()];
        let (x, w, b) = (self.data(), w.data(), b.map(|b| b.data()));
        match g.plain() {
            Some(p) => conv::conv2d_forward(&p, x, w, b, &mut out),
            None => general::forward(&g, x, w, b, &mut out),
        }
        Ok(Tensor::raw(out, vec![g.n, g.c_out, g.out_h(), g.out_w()]))
    }

    /// Per sample, `x * J^T(f(r, conv2d(x, w, b)))`, with `J^T` the input VJP of the same
    /// convolution: a forward pass, an elementwise map of `(r, z)` and the input-weighted
    /// transposed convolution in one fused pass (the shape of a reweighted backward pass,
    /// such as an LRP rule's). `r` has the convolution's output shape.
    pub fn conv2d_forward_map_backward(
        &self,
        w: &Tensor,
        b: Option<&Tensor>,
        r: &Tensor,
        spec: &Conv2dSpec,
        f: impl Fn(f32, f32) -> f32 + Sync + Send,
    ) -> Result<Tensor> {
        let g = conv_geom(self.shape(), w.shape(), b.map(|b| b.shape()), spec)?;
        Self::check_grad_out(
            "conv2d forward-map-backward",
            r,
            &[g.n, g.c_out, g.out_h(), g.out_w()],
        )?;
        let mut out = vec![0.0; self.numel()];
        let (x, w, b) = (self.data(), w.data(), b.map(|b| b.data()));
        match g.plain() {
            Some(p) => conv_fused::conv2d_forward_map_backward(&p, x, w, b, r.data(), f, &mut out),
            None => general::forward_map_backward(&g, (x, w, b), r.data(), f, &mut out),
        }
        Ok(Tensor::raw(out, self.shape().to_vec()))
    }

    /// `sum_b factor_b * x_b ⊙ J_{w_b}^T(s)` for convolutions of inputs shaped `x_shape`,
    /// computed a sample at a time: `s_of(n, s_n)` writes sample `n`'s output signal (the
    /// convolution's output shape), so no batch-sized `s` is stored. Each term is
    /// `(w, x, factor)`, with `x` the input batch or one sample (`[1, ...]`) used for every
    /// sample. Terms are summed in order.
    pub fn conv2d_weighted_input_grads(
        x_shape: &[usize],
        spec: &Conv2dSpec,
        s_of: impl Fn(usize, &mut [f32]) + Sync + Send,
        terms: &[(&Tensor, &Tensor, f32)],
    ) -> Result<Tensor> {
        const OP: &str = "conv2d weighted input grads";
        let Some((w0, ..)) = terms.first() else {
            return Err(Error::invalid(OP, "no terms"));
        };
        let g = conv_geom(x_shape, w0.shape(), None, spec)?;
        let mut one = x_shape.to_vec();
        one[0] = 1;
        let mut kernel_terms = Vec::with_capacity(terms.len());
        for (w, x, factor) in terms {
            if w.shape() != w0.shape() {
                return Err(Error::shape(
                    OP,
                    &[w.shape(), w0.shape()],
                    "the weights differ in shape",
                ));
            }
            if x.shape() != x_shape && x.shape() != one.as_slice() {
                return Err(Error::shape(
                    OP,
                    &[x.shape(), x_shape],
                    "each term's input must be the batch's shape or one sample's",
                ));
            }
            kernel_terms.push(conv_fused::WeightedVjp {
                w: w.data(),
                x: x.data(),
                factor: *factor,
            });
        }
        let mut out = vec![0.0; x_shape.iter().product()];
        match g.plain() {
            Some(p) => conv_fused::conv2d_weighted_input_grads(&p, s_of, &kernel_terms, &mut out),
            None => general::weighted_input_grads(&g, s_of, &kernel_terms, &mut out),
        }
        Ok(Tensor::raw(out, x_shape.to_vec()))
    }

    /// The input VJP of conv2d, `J_W^T(grad_out)`: a transposed convolution back to `x_shape`.
    pub fn conv2d_input_grad(
        grad_out: &Tensor,
        w: &Tensor,
        x_shape: &[usize],
        spec: &Conv2dSpec,
    ) -> Result<Tensor> {
        let g = conv_geom(x_shape, w.shape(), None, spec)?;
        Self::check_grad_out(
            "conv2d backward",
            grad_out,
            &[g.n, g.c_out, g.out_h(), g.out_w()],
        )?;
        let mut gx = vec![0.0; x_shape.iter().product()];
        match g.plain() {
            Some(p) => conv::conv2d_backward_input(&p, grad_out.data(), w.data(), &mut gx),
            None => general::backward_input(&g, grad_out.data(), w.data(), &mut gx),
        }
        Ok(Tensor::raw(gx, x_shape.to_vec()))
    }

    /// The weight (and bias) VJP of conv2d for input `x`.
    pub fn conv2d_weight_grad(
        x: &Tensor,
        grad_out: &Tensor,
        w_shape: &[usize],
        spec: &Conv2dSpec,
    ) -> Result<(Tensor, Tensor)> {
        let g = conv_geom(x.shape(), w_shape, None, spec)?;
        Self::check_grad_out(
            "conv2d backward",
            grad_out,
            &[g.n, g.c_out, g.out_h(), g.out_w()],
        )?;
        let mut gw = vec![0.0; w_shape.iter().product()];
        let mut gb = vec![0.0; g.c_out];
        match g.plain() {
            Some(p) => {
                conv::conv2d_backward_weight(&p, x.data(), grad_out.data(), &mut gw, Some(&mut gb))
            }
            None => general::backward_weight(&g, x.data(), grad_out.data(), &mut gw, &mut gb),
        }
        Ok((
            Tensor::raw(gw, w_shape.to_vec()),
            Tensor::raw(gb, vec![g.c_out]),
        ))
    }

    /// Max pooling; also returns, per output, the flat input index of its winner.
    pub fn max_pool2d(&self, spec: &Pool2dSpec) -> Result<(Tensor, Vec<u32>)> {
        let g = pool_geom("max_pool2d", self.shape(), spec)?;
        if self.numel() > u32::MAX as usize {
            return Err(Error::invalid(
                "max_pool2d",
                "input too large for 32-bit winner indices",
            ));
        }
        let len = g.n * g.c * g.out_h() * g.out_w();
        let (mut out, mut arg) = (vec![0.0; len], vec![0u32; len]);
        pool::max_pool2d_forward(&g, self.data(), &mut out, &mut arg);
        Ok((Tensor::raw(out, vec![g.n, g.c, g.out_h(), g.out_w()]), arg))
    }

    /// Routes `grad_out` to the winners recorded by [`Tensor::max_pool2d`].
    pub fn max_pool2d_grad(
        grad_out: &Tensor,
        winners: &[u32],
        x_shape: &[usize],
        spec: &Pool2dSpec,
    ) -> Result<Tensor> {
        let g = pool_geom("max_pool2d", x_shape, spec)?;
        Self::check_grad_out(
            "max_pool2d backward",
            grad_out,
            &[g.n, g.c, g.out_h(), g.out_w()],
        )?;
        let n: usize = x_shape.iter().product();
        if winners.len() != grad_out.numel() || winners.iter().any(|&i| i as usize >= n) {
            return Err(Error::invalid(
                "max_pool2d backward",
                "winner indices do not match the input",
            ));
        }
        let mut gx = vec![0.0; n];
        pool::max_pool2d_backward(&g, grad_out.data(), winners, &mut gx);
        Ok(Tensor::raw(gx, x_shape.to_vec()))
    }

    /// Average pooling (padding counts as zeros in the average, PyTorch's default).
    pub fn avg_pool2d(&self, spec: &Pool2dSpec) -> Result<Tensor> {
        let g = pool_geom("avg_pool2d", self.shape(), spec)?;
        let mut out = vec![0.0; g.n * g.c * g.out_h() * g.out_w()];
        pool::avg_pool2d_forward(&g, self.data(), &mut out);
        Ok(Tensor::raw(out, vec![g.n, g.c, g.out_h(), g.out_w()]))
    }

    /// The VJP of [`Tensor::avg_pool2d`].
    pub fn avg_pool2d_grad(
        grad_out: &Tensor,
        x_shape: &[usize],
        spec: &Pool2dSpec,
    ) -> Result<Tensor> {
        let g = pool_geom("avg_pool2d", x_shape, spec)?;
        Self::check_grad_out(
            "avg_pool2d backward",
            grad_out,
            &[g.n, g.c, g.out_h(), g.out_w()],
        )?;
        let mut gx = vec![0.0; x_shape.iter().product()];
        pool::avg_pool2d_backward(&g, grad_out.data(), &mut gx);
        Ok(Tensor::raw(gx, x_shape.to_vec()))
    }

    fn check_grad_out(op: &'static str, g: &Tensor, want: &[usize]) -> Result<()> {
        if g.shape() != want {
            return Err(Error::shape(
                op,
                &[g.shape(), want],
                "the output signal must match the output shape",
            ));
        }
        Ok(())
    }
}
