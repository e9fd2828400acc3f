//! The ONNX reader on its seeds, their prefixes, and runs of empty sub-messages.

use crate::files::*;
use crate::loaders::*;
use relprop::onnx::{decode_model, AttrValue, ConstData, Dim};
use std::time::Duration;

#[test]
fn onnx_seeds_decode_as_written() {
    let m = decode_model(&onnx_small(), None).unwrap();
    assert_eq!(m.opset, 17);
    let g = &m.graph;
    assert_eq!(g.initializers[0].0, "w");
    assert_eq!(g.initializers[0].1.dims, [2, 3]);
    assert_eq!(
        g.initializers[0].1.data,
        ConstData::F32(vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    );
    assert_eq!(g.initializers[1].1.data, ConstData::I64(vec![1, 6]));
    assert_eq!(g.nodes[0].op_type, "Gemm");
    assert_eq!(g.nodes[0].attr("alpha"), Some(&AttrValue::Float(1.5)));
    assert_eq!(g.nodes[0].attr("transB"), Some(&AttrValue::Int(1)));
    assert_eq!(
        g.inputs[0].dims,
        [Dim::Dynamic("batch".into()), Dim::Fixed(3)]
    );
    assert_eq!(
        g.outputs[0].dims,
        [Dim::Dynamic("batch".into()), Dim::Fixed(2)]
    );
    let bn = decode_model(ONNX_BN_CNN, None).unwrap();
    assert_eq!(bn.graph.initializers.len(), 12);
    // Every prefix of the small model is refused or loads, within the limits.
    let small = onnx_small();
    let mut refused = 0;
    for cut in 0..small.len() {
        let r = check(
            Loader::Onnx,
            &small[..cut],
            &format!("cut at {cut}"),
            Duration::from_secs(1),
        );
        refused += usize::from(r.is_err());
    }
    assert!(refused > small.len() / 2, "{refused} of {}", small.len());
}

/// Prost allocates nothing a length prefix declares before checking it against the bytes
/// that follow, but each sub-message becomes a struct: a run of empty ones (2 bytes each)
/// would cost the most memory per byte. The reader estimates that before decoding and
/// refuses what exceeds its multiple. Each case here is 100 KB of one such run: refused,
/// or decoded within the bound the mutation tests use (`ONNX_BYTES_PER_BYTE`).
#[test]
fn onnx_memory_is_a_bounded_multiple_of_the_file() {
    let run = |field: u64, n: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            pb_bytes(&mut out, field, &[]);
        }
        out
    };
    let n = 50_000;
    let node_with = |field: u64| {
        let mut node = Vec::new();
        pb_bytes(&mut node, 4, b"Relu");
        node.extend(run(field, n));
        node
    };
    let attr_with = |field: u64| {
        let mut attr = Vec::new();
        pb_bytes(&mut attr, 1, b"a");
        attr.extend(run(field, n));
        let mut node = Vec::new();
        pb_bytes(&mut node, 4, b"If");
        pb_bytes(&mut node, 5, &attr);
        node
    };
    // A TensorShapeProto of empty dims, in TypeProto.Tensor.shape, in TypeProto.
    let mut tensor_type = Vec::new();
    pb_bytes(&mut tensor_type, 2, &run(1, n));
    let mut ty = Vec::new();
    pb_bytes(&mut ty, 1, &tensor_type);
    let mut input = Vec::new();
    pb_bytes(&mut input, 1, b"x");
    pb_bytes(&mut input, 2, &ty);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty nodes", onnx_model(&run(1, n))),
        ("empty initializers", onnx_model(&run(5, n))),
        ("empty inputs", onnx_model(&run(11, n))),
        ("empty opset imports", {
            let mut m = onnx_model(&[]);
            m.extend(run(8, n));
            m
        }),
        (
            "empty node input names",
            onnx_graph_of(&[(1, node_with(1))]),
        ),
        ("empty attributes", onnx_graph_of(&[(1, node_with(5))])),
        (
            "empty attribute tensors",
            onnx_graph_of(&[(1, attr_with(10))]),
        ),
        (
            "empty attribute graphs",
            onnx_graph_of(&[(1, attr_with(11))]),
        ),
        ("empty dims", onnx_graph_of(&[(11, input)])),
        ("empty external data entries", {
            let mut t = onnx_tensor("w", &[1], 1, 9, &[0; 4]);
            t.extend(run(13, n));
            onnx_graph_of(&[(5, t)])
        }),
    ];
    let mut worst = 0.0f64;
    for (what, bytes) in cases {
        let (result, usage) = run_checked(Loader::Onnx, &bytes);
        let outcome = result.unwrap_or_else(|p| panic!("{what}: panicked: {p}"));
        let ratio = usage.peak as f64 / bytes.len() as f64;
        println!(
            "onnx {what}: {} bytes -> peak {} ({ratio:.0} per byte), {:?}",
            bytes.len(),
            usage.peak,
            outcome.err()
        );
        worst = worst.max(ratio);
        assert!(
            usage.elapsed < Duration::from_secs(2),
            "{what}: {:?}",
            usage.elapsed
        );
        assert!(
            usage.peak <= Loader::Onnx.memory_bound(bytes.len()),
            "{what}: {} bytes for a {}-byte file",
            usage.peak,
            bytes.len()
        );
    }
    // The bound is not far above the worst case, so a regression shows.
    assert!(
        worst * 2.0 > ONNX_BYTES_PER_BYTE as f64,
        "worst {worst:.0} per byte"
    );
}

/// Beyond decoding: the importer and a forward pass on mutated models (a changed
/// attribute, dims or op type) refuse or run, never panic.
#[test]
fn onnx_import_and_forward_never_panic_on_mutated_models() {
    use relprop::core::{Rng, Tape, Tensor};
    use relprop::nn::{Mode, Module};
    use relprop::onnx::OnnxNet;
    let mut rng = Rng::new(77);
    let (mut imported, mut ran) = (0, 0);
    const RUNS: usize = 400;
    for k in 0..RUNS {
        let bytes = crate::mutate::mutate(&mut rng, ONNX_BN_CNN, ONNX_BN_CNN);
        let outcome = std::panic::catch_unwind(|| {
            let Ok(model) = decode_model(&bytes, None) else {
                return (false, false);
            };
            let Ok(net) = OnnxNet::from_model(&model, "mutated") else {
                return (false, false);
            };
            let Some(shape) = net
                .input_shape()
                .filter(|s| s.iter().product::<usize>() < 1 << 20)
            else {
                return (true, false);
            };
            let mut dims = vec![2];
            dims.extend(shape);
            let mut tape = Tape::for_inference();
            let x = tape.leaf(Tensor::rand_uniform(&dims, 0.0, 1.0, 1));
            (true, net.forward(&mut tape, x, Mode::Eval).is_ok())
        });
        let (i, r) = outcome.unwrap_or_else(|_| panic!("mutation {k} panicked"));
        imported += usize::from(i);
        ran += usize::from(r);
    }
    println!("{RUNS} mutated models: {imported} imported, {ran} ran a forward pass");
    assert!(
        ran > 0,
        "no mutation left a runnable model: the mutations are too coarse"
    );
}
