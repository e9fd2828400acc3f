//! Numeric kernels on plain `f32` slices: contiguous, row-major, images in
//! NCHW layout, convolution weights as `[c_out, c_in / groups, kh, kw]`, and
//! convolution meaning cross-correlation (as in PyTorch).
//!
//! - [`gemm`]: matrix multiply (a checked wrapper around
//!   `matrixmultiply::sgemm`, the only `unsafe` in the project), split over
//!   rayon threads for large products when not already inside a split.
//! - [`conv`]: 2-D convolution forward and both gradients via im2col/col2im
//!   and [`gemm::gemm`], parallel over the batch.
//!   (The layout helpers live in the private `im2col` module.)
//! - [`conv_general`]: convolutions with asymmetric padding, dilation or channel
//!   groups (the plain ones go to [`conv`]); depthwise ones by direct loops.
//! - [`conv_fused`]: a convolution, an elementwise map and the input-weighted
//!   transposed convolution in one pass per sample (reweighted backward passes).
//! - [`pool`]: max and average pooling forward and backward, parallel over
//!   the `n * c` planes.
//! - [`split`]: when a kernel may split its work across threads (not when it
//!   is already one task of an outer split), and running a whole computation
//!   on the pool.
//!
//! Shapes are described by small `Copy` geometry structs; the tensor layer
//! validates slice lengths before calling. The kernels never cause undefined
//! behaviour: an inconsistent length at worst panics through slice indexing.

pub mod conv;
mod conv_bands;
mod conv_depthwise;
pub mod conv_fused;
pub mod conv_general;
pub mod gemm;
mod im2col;
pub mod pool;
pub mod split;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_general;
