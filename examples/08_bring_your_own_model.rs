//! Lesson 8: bring your own model. Export it from PyTorch to ONNX, then explain it here.
//!
//! ```python
//! torch.onnx.export(model.eval(), (x,), "model.onnx", input_names=["input"],
//!                   output_names=["output"], dynamic_shapes=({0: torch.export.Dim("batch")},))
//! ```
//!
//! `OnnxNet::load` reads the file (weights inline or in external data beside it) and
//! turns the graph into a model that records onto the same tape as the zoo: each node's
//! ONNX name becomes its label, BatchNorm is folded into the convolution before it, a
//! trailing softmax is dropped (explanations start at the logits), and a leading
//! normalisation passes relevance unchanged to the raw input. Composites then choose rules
//! by op kind, first layer and label exactly as for the zoo.
//!
//! Run: `cargo run --release --example 08_bring_your_own_model [MODEL.onnx]` (default: a
//! small MobileNet-like test model with ImageNet-style normalisation in the graph; writes
//! own_model.png).

use relprop::core::{Error, Result, Tensor};
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::{explain, Composite, Method, Targets};
use relprop::nn::io::read_safetensors;
use relprop::onnx::OnnxNet;
use std::path::PathBuf;

fn main() -> Result<()> {
    let fixture = PathBuf::from("tests/fixtures/onnx/mobile_net.onnx");
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or(fixture.clone());
    let net = OnnxNet::load(&path).map_err(|e| Error::invalid("onnx", e.to_string()))?;
    let shape = net
        .input_shape()
        .ok_or_else(|| Error::invalid("onnx", "the model does not fix its input size"))?;
    println!(
        "{}: input [N, {shape:?}] (one sample's shape after N)",
        net.name()
    );
    for note in net.notes() {
        println!("  {note}");
    }

    // Inputs: the fixture's own (uniform noise in [0, 1)), or random ones of the model's size.
    let x = if path == fixture {
        let arrays = read_safetensors(fixture.with_extension("safetensors"))
            .map_err(|e| Error::invalid("fixture", e.to_string()))?;
        let (_, x) = arrays
            .into_iter()
            .find(|(n, _)| n == "x")
            .expect("the fixture holds x");
        let x = x
            .into_tensor()
            .map_err(|e| Error::invalid("fixture", e.to_string()))?;
        x.batch_range(0, 1)?
    } else {
        let mut dims = vec![1];
        dims.extend(&shape);
        Tensor::rand_uniform(&dims, 0.0, 1.0, 0)
    };

    // SGLRP with the paper's rules; the ZBox bounds 0 and 1 are for the raw input and are
    // carried through the model's own normalisation to its first convolution.
    let rules = Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    let a = explain(
        &net,
        &x,
        &Targets::Argmax,
        &Method::Sglrp { composite: rules },
    )?;
    println!("predicted class {}", a.targets[0]);
    print!("{}", a.audit);

    // One map per pixel: the channels' relevance summed, the input shown in grey.
    let [c, h, w] = [shape[0], shape[1], shape[2]];
    let plane = h * w;
    let mut map = vec![0.0f32; plane];
    let mut grey = vec![0.0f32; plane];
    for k in 0..c * plane {
        map[k % plane] += a.relevance.data()[k];
        grey[k % plane] += x.data()[k] / c as f32;
    }
    let mut grid = Grid::new(128, 4);
    grid.column_titles(["input", "relevance"]);
    grid.add_row(vec![
        Cell::Input(grey, h, w),
        Cell::Heatmap(map, h, w, ColorMap::Bwr),
    ]);
    grid.legend(ColorMap::Bwr, ["red: for the class, blue: against"]);
    grid.save(std::path::Path::new("own_model.png"))
        .map_err(|e| Error::invalid("png", e.to_string()))?;
    println!("wrote own_model.png (red: evidence for the class, blue: against)");
    Ok(())
}
