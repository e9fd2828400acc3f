//! The three real exports (PyTorch) in tests/fixtures/onnx.

use super::*;
use std::collections::{HashMap, HashSet};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/onnx")
        .join(name)
}

fn f32s(t: &ConstTensor) -> &[f32] {
    match &t.data {
        ConstData::F32(v) => v,
        ConstData::I64(_) => panic!("expected floats, got {:?}", t.dims),
    }
}

fn op_types(m: &OnnxModel) -> HashSet<&str> {
    m.graph.nodes.iter().map(|n| n.op_type.as_str()).collect()
}

/// What every export must satisfy: one input with a dynamic batch and the given image
/// shape, one output of 10 logits per item, every node input defined before use, and each
/// initializer holding exactly `dims` elements.
fn check_common(m: &OnnxModel, image: [usize; 3]) {
    assert_eq!(m.opset, 20);
    assert!(m.producer.starts_with("pytorch"), "{}", m.producer);
    let g = &m.graph;
    assert_eq!(g.inputs.len(), 1, "{:?}", g.inputs);
    let input = &g.inputs[0];
    assert_eq!(input.name, "input");
    assert!(matches!(&input.dims[0], Dim::Dynamic(s) if !s.is_empty()));
    let rest: Vec<Dim> = image.iter().map(|&d| Dim::Fixed(d)).collect();
    assert_eq!(input.dims[1..], rest[..]);
    assert_eq!(g.outputs.len(), 1);
    assert!(matches!(&g.outputs[0].dims[0], Dim::Dynamic(_)));
    assert_eq!(g.outputs[0].dims[1], Dim::Fixed(10));

    let mut defined: HashSet<&str> = g.initializers.iter().map(|(n, _)| n.as_str()).collect();
    defined.insert(&input.name);
    for n in &g.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            assert!(
                defined.contains(i.as_str()),
                "{} reads undefined {i}",
                n.name
            );
        }
        defined.extend(n.outputs.iter().map(String::as_str));
    }
    assert!(defined.contains(g.outputs[0].name.as_str()));
    for (name, t) in &g.initializers {
        let numel: usize = t.dims.iter().product();
        let len = match &t.data {
            ConstData::F32(v) => v.len(),
            ConstData::I64(v) => v.len(),
        };
        assert_eq!(len, numel, "{name}");
    }
}

/// Conv weights are [out, in / group, kh, kw] with kernel_shape [kh, kw]; the bias has
/// `out` elements.
fn check_convs(m: &OnnxModel) -> usize {
    let init: HashMap<&str, &ConstTensor> = m
        .graph
        .initializers
        .iter()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    let mut convs = 0;
    for n in m.graph.nodes.iter().filter(|n| n.op_type == "Conv") {
        let w = init[n.inputs[1].as_str()];
        let Some(AttrValue::Ints(k)) = n.attr("kernel_shape") else {
            panic!("{}: no kernel_shape", n.name)
        };
        assert_eq!(w.dims.len(), 4);
        assert_eq!(w.dims[2..], [k[0] as usize, k[1] as usize]);
        if let Some(b) = n.inputs.get(2) {
            assert_eq!(init[b.as_str()].dims, [w.dims[0]], "{}", n.name);
        }
        convs += 1;
    }
    convs
}

/// The little-endian bytes of `values`, searched for in `file`: the reader returned
/// exactly what is stored there.
fn stored_at(file: &[u8], values: &[f32]) -> Option<usize> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    file.windows(bytes.len()).position(|w| w == bytes)
}

#[test]
fn bn_cnn_with_inline_weights() {
    let path = fixture("bn_cnn.onnx");
    let m = read_model(&path).unwrap();
    check_common(&m, [3, 24, 24]);
    let ops = op_types(&m);
    for op in [
        "Conv",
        "BatchNormalization",
        "Relu",
        "MaxPool",
        "Flatten",
        "Gemm",
    ] {
        assert!(ops.contains(op), "{op} missing from {ops:?}");
    }
    assert_eq!(check_convs(&m), 2);
    assert_eq!(m.graph.initializers.len(), 12);
    let get = |name: &str| {
        &m.graph
            .initializers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    };
    // 24 channels of 24 / 2 / 2 = 6 x 6 after two 2x2 poolings: 864 features.
    assert_eq!(get("8.weight").dims, [48, 24 * 6 * 6]);
    assert_eq!(get("10.weight").dims, [10, 48]);
    // A variance cannot be negative.
    assert!(f32s(get("1.running_var")).iter().all(|&v| v > 0.0));
    let bytes = std::fs::read(&path).unwrap();
    for name in ["0.weight", "8.weight", "10.bias"] {
        assert!(stored_at(&bytes, f32s(get(name))).is_some(), "{name}");
    }
    // Decoding the bytes without a folder gives the same model (no external data).
    assert_eq!(decode_model(&bytes, None).unwrap(), m);
    let bn = m
        .graph
        .nodes
        .iter()
        .find(|n| n.op_type == "BatchNormalization");
    assert!(matches!(bn.unwrap().attr("epsilon"), Some(AttrValue::Float(e)) if *e == 1e-5));
}

fn check_external(name: &str, image: [usize; 3], ops: &[&str], convs: usize) -> OnnxModel {
    let path = fixture(name);
    let m = read_model(&path).unwrap();
    check_common(&m, image);
    let found = op_types(&m);
    for op in ops {
        assert!(found.contains(op), "{op} missing from {found:?}");
    }
    assert_eq!(check_convs(&m), convs);
    // Every float weight is stored in the data file, or (small ones) in the model itself,
    // and the data file's weights make up most of it.
    let data = std::fs::read(fixture(&format!("{name}.data"))).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut external = 0;
    for (n, t) in &m.graph.initializers {
        if let ConstData::F32(v) = &t.data {
            if v.len() > 4 && stored_at(&data, v).is_some() {
                external += v.len() * 4;
            } else {
                assert!(stored_at(&bytes, v).is_some(), "{n}");
            }
        }
    }
    assert!(
        external > data.len() / 2,
        "{external} of {} bytes",
        data.len()
    );
    // Without the folder, the external data cannot be found.
    let err = decode_model(&bytes, None).unwrap_err().to_string();
    assert!(
        err.contains("onnx initializer") && err.contains(".data"),
        "{err}"
    );
    m
}

#[test]
fn small_resnet_with_external_data() {
    let m = check_external(
        "small_resnet.onnx",
        [1, 28, 28],
        &[
            "Conv",
            "Relu",
            "Add",
            "MaxPool",
            "ReduceMean",
            "Reshape",
            "Gemm",
            "Softmax",
        ],
        5,
    );
    assert_eq!(m.graph.initializers.len(), 14);
}

#[test]
fn mobile_net_with_external_data() {
    let m = check_external(
        "mobile_net.onnx",
        [3, 32, 32],
        &["Sub", "Div", "Conv", "Clip", "LeakyRelu", "Concat", "Gemm"],
        6,
    );
    assert_eq!(m.graph.initializers.len(), 20);
    let depthwise = m
        .graph
        .nodes
        .iter()
        .find(|n| n.inputs[1] == "4.body.0.weight");
    assert_eq!(depthwise.unwrap().attr("group"), Some(&AttrValue::Int(16)));
    // Normalisation constants have one value per colour channel.
    let mean = &m
        .graph
        .initializers
        .iter()
        .find(|(n, _)| n == "0.mean")
        .unwrap()
        .1;
    assert_eq!(mean.dims, [1, 3, 1, 1]);
    // The reshape target is an INT64 constant.
    let shape = &m
        .graph
        .initializers
        .iter()
        .find(|(n, _)| n == "val_45")
        .unwrap()
        .1;
    assert!(matches!(&shape.data, ConstData::I64(v) if v.len() == 2));
}
