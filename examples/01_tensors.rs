//! Lesson 1: tensors.
//!
//! A `Tensor` is a shape plus row-major `f32` values. Operations return new tensors;
//! binary operations broadcast like NumPy. Run: `cargo run --release --example 01_tensors`.

use relprop::core::{Conv2dSpec, Pool2dSpec, Result, Tensor};

fn main() -> Result<()> {
    // A 2x3 matrix: rows [1 2 3] and [4 5 6].
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    println!("a = {a:?}");

    // Broadcasting: a [3] row is added to every row of `a`.
    let row = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])?;
    println!("a + row = {:?}", a.add(&row)?);

    // Reductions over axes: column sums (axis 0) and row maxima (axis 1).
    println!("column sums = {:?}", a.sum(&[0], false)?);
    println!("row maxima  = {:?}", a.max(&[1], false)?);
    println!("argmax per row = {:?}", a.argmax(1)?);

    // Matrix product [2,3] x [3,2] -> [2,2]; transposes are free (stride swaps).
    let at = a.transpose(0, 1)?;
    println!("a a^T = {:?}", a.matmul(&at)?);

    // Softmax is computed stably: huge logits do not overflow.
    let logits = Tensor::from_vec(vec![1000.0, 1001.0, 1002.0], &[1, 3])?;
    println!("softmax = {:?}", logits.softmax(1)?);

    // A 3x3 averaging filter over a 1x1x5x5 image with padding 1 keeps the size.
    let image = Tensor::rand_uniform(&[1, 1, 5, 5], 0.0, 1.0, 42);
    let blur = Tensor::full(&[1, 1, 3, 3], 1.0 / 9.0);
    let smooth = image.conv2d(&blur, None, &Conv2dSpec::new(1, 1))?;
    println!("conv2d output shape = {:?}", smooth.shape());
    let (pooled, _winners) = smooth.max_pool2d(&Pool2dSpec::new(2, 2, 0))?;
    println!("max_pool2d output shape = {:?}", pooled.shape());

    // Mistakes are errors that name the op and the shapes, never panics.
    let bad = a.matmul(&a);
    println!("a a = {}", bad.unwrap_err());
    Ok(())
}
