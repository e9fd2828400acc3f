//! The importer on hand-built graphs: each operator's semantics against the same
//! computation written with tensors, the fusions, and the errors a user can meet.

use super::*;
use crate::reader::{
    AttrValue, Attribute, ConstData, ConstTensor, Dim, Graph, Node, OnnxModel, ValueInfo,
};
use relprop_core::Tensor;

fn f32s(dims: &[usize], data: Vec<f32>) -> ConstTensor {
    ConstTensor {
        dims: dims.to_vec(),
        data: ConstData::F32(data),
    }
}

fn i64s(data: Vec<i64>) -> ConstTensor {
    ConstTensor {
        dims: vec![data.len()],
        data: ConstData::I64(data),
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<(&str, AttrValue)>,
) -> Node {
    Node {
        name: name.into(),
        op_type: op.into(),
        domain: String::new(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attributes: attrs
            .into_iter()
            .map(|(n, v)| Attribute {
                name: n.into(),
                value: v,
            })
            .collect(),
    }
}

fn model(
    input: &[usize],
    nodes: Vec<Node>,
    inits: Vec<(&str, ConstTensor)>,
    output: &str,
) -> OnnxModel {
    let mut dims = vec![Dim::Dynamic("batch".into())];
    dims.extend(input.iter().map(|&d| Dim::Fixed(d)));
    OnnxModel {
        opset: 17,
        producer: "test".into(),
        graph: Graph {
            name: "g".into(),
            nodes,
            initializers: inits.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
            inputs: vec![ValueInfo {
                name: "x".into(),
                dims,
            }],
            outputs: vec![ValueInfo {
                name: output.into(),
                dims: vec![],
            }],
        },
    }
}

fn run(m: &OnnxModel, x: &Tensor) -> Tensor {
    let net = OnnxNet::from_model(m, "t").unwrap();
    let mut tape = Tape::for_inference();
    let xi = tape.leaf(x.clone());
    let out = net.forward(&mut tape, xi, Mode::Eval).unwrap();
    tape.value(out).unwrap().clone()
}

fn rand(shape: &[usize], seed: u64) -> Vec<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, seed).into_vec()
}

#[test]
fn gemm_with_alpha_beta_and_untransposed_weight_is_an_affine_map() {
    let (w, b) = (rand(&[4, 3], 1), rand(&[3], 2));
    let m = model(
        &[4],
        vec![node(
            "Gemm",
            "fc",
            &["x", "W", "B"],
            &["y"],
            vec![
                ("alpha", AttrValue::Float(0.5)),
                ("beta", AttrValue::Float(2.0)),
            ],
        )],
        vec![
            ("W", f32s(&[4, 3], w.clone())),
            ("B", f32s(&[3], b.clone())),
        ],
        "y",
    );
    let x = Tensor::rand_uniform(&[2, 4], -1.0, 1.0, 3);
    let want = x
        .matmul(&Tensor::from_vec(w, &[4, 3]).unwrap())
        .unwrap()
        .mul_scalar(0.5)
        .add(&Tensor::from_vec(b, &[3]).unwrap().mul_scalar(2.0))
        .unwrap();
    assert!(run(&m, &x).max_rel_diff(&want).unwrap() < 1e-6);
}

#[test]
fn matmul_then_add_becomes_one_linear_layer_with_a_bias() {
    let (w, b) = (rand(&[5, 2], 4), rand(&[2], 5));
    let m = model(
        &[5],
        vec![
            node("MatMul", "mm", &["x", "W"], &["h"], vec![]),
            node("Add", "bias", &["h", "B"], &["y"], vec![]),
        ],
        vec![
            ("W", f32s(&[5, 2], w.clone())),
            ("B", f32s(&[2], b.clone())),
        ],
        "y",
    );
    let net = OnnxNet::from_model(&m, "t").unwrap();
    assert_eq!(net.layers(), vec![("mm".to_string(), "MatMul".to_string())]);
    assert!(net.notes().iter().any(|n| n.contains("bias of `mm`")));
    let x = Tensor::rand_uniform(&[3, 5], -1.0, 1.0, 6);
    let want = x
        .matmul(&Tensor::from_vec(w, &[5, 2]).unwrap())
        .unwrap()
        .add(&Tensor::from_vec(b, &[2]).unwrap())
        .unwrap();
    assert!(run(&m, &x).max_rel_diff(&want).unwrap() < 1e-6);
}

#[test]
fn a_zero_pad_before_a_conv_becomes_its_padding_and_same_upper_pads_at_the_end() {
    let w = rand(&[2, 1, 3, 3], 7);
    let wt = Tensor::from_vec(w.clone(), &[2, 1, 3, 3]).unwrap();
    let x = Tensor::rand_uniform(&[1, 1, 6, 5], -1.0, 1.0, 8);
    // Pad (top 0, left 1, bottom 1, right 0), then a stride-2 conv.
    let padded = model(
        &[1, 6, 5],
        vec![
            node("Pad", "pad", &["x", "pads"], &["p"], vec![]),
            node(
                "Conv",
                "conv",
                &["p", "W"],
                &["y"],
                vec![("strides", AttrValue::Ints(vec![2, 2]))],
            ),
        ],
        vec![
            ("W", f32s(&[2, 1, 3, 3], w.clone())),
            ("pads", i64s(vec![0, 0, 0, 1, 0, 0, 1, 0])),
        ],
        "y",
    );
    let net = OnnxNet::from_model(&padded, "t").unwrap();
    assert_eq!(net.layers().len(), 1, "the Pad node is absorbed");
    let explicit = x
        .pad(&[0, 0, 0, 1], &[0, 0, 1, 0])
        .unwrap()
        .conv2d(&wt, None, &relprop_core::Conv2dSpec::new(2, 0))
        .unwrap();
    assert!(run(&padded, &x).max_rel_diff(&explicit).unwrap() < 1e-6);
    // SAME_UPPER with stride 2 on 6x5: out 3x3, total pads 1 (rows) and 2 (cols).
    let same = model(
        &[1, 6, 5],
        vec![node(
            "Conv",
            "conv",
            &["x", "W"],
            &["y"],
            vec![
                ("strides", AttrValue::Ints(vec![2, 2])),
                ("auto_pad", AttrValue::String("SAME_UPPER".into())),
            ],
        )],
        vec![("W", f32s(&[2, 1, 3, 3], w))],
        "y",
    );
    let want = x
        .pad(&[0, 0, 0, 1], &[0, 0, 1, 1])
        .unwrap()
        .conv2d(&wt, None, &relprop_core::Conv2dSpec::new(2, 0))
        .unwrap();
    let got = run(&same, &x);
    assert_eq!(got.shape(), &[1, 2, 3, 3]);
    assert!(got.max_rel_diff(&want).unwrap() < 1e-6);
}

#[test]
fn shapes_computed_in_the_graph_follow_the_batch() {
    // x.view(x.size(0), -1) as the TorchScript exporter writes it, then Unsqueeze/Squeeze and Transpose.
    let m = model(
        &[2, 3],
        vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node(
                "Gather",
                "gather",
                &["s", "zero"],
                &["n"],
                vec![("axis", AttrValue::Int(0))],
            ),
            node("Unsqueeze", "unsq", &["n", "axes"], &["n1"], vec![]),
            node(
                "Concat",
                "cat",
                &["n1", "minus_one"],
                &["target"],
                vec![("axis", AttrValue::Int(0))],
            ),
            node("Reshape", "flat", &["x", "target"], &["f"], vec![]),
            node("Unsqueeze", "u", &["f", "axes2"], &["u1"], vec![]),
            node("Squeeze", "s", &["u1", "axes2"], &["s1"], vec![]),
            node(
                "Transpose",
                "t",
                &["s1"],
                &["y"],
                vec![("perm", AttrValue::Ints(vec![1, 0]))],
            ),
        ],
        vec![
            (
                "zero",
                ConstTensor {
                    dims: vec![],
                    data: ConstData::I64(vec![0]),
                },
            ),
            ("axes", i64s(vec![0])),
            ("axes2", i64s(vec![2])),
            ("minus_one", i64s(vec![-1])),
        ],
        "y",
    );
    for n in [1, 3] {
        let x = Tensor::rand_uniform(&[n, 2, 3], -1.0, 1.0, 9);
        let got = run(&m, &x);
        assert_eq!(got, x.reshape(&[n, 6]).unwrap().permute(&[1, 0]).unwrap());
    }
}

#[test]
fn the_trailing_softmax_is_dropped_and_unsupported_ops_are_named() {
    let m = model(
        &[3],
        vec![
            node("Relu", "r", &["x"], &["h"], vec![]),
            node(
                "Softmax",
                "sm",
                &["h"],
                &["y"],
                vec![("axis", AttrValue::Int(1))],
            ),
        ],
        vec![],
        "y",
    );
    let x = Tensor::rand_uniform(&[2, 3], -1.0, 1.0, 1);
    assert_eq!(run(&m, &x), x.relu());
    let bad = model(
        &[3],
        vec![node("LSTM", "rnn", &["x"], &["y"], vec![])],
        vec![],
        "y",
    );
    let e = OnnxNet::from_model(&bad, "t").unwrap_err().to_string();
    assert!(
        e.contains("LSTM") && e.contains("rnn") && e.contains("Conv, Gemm"),
        "{e}"
    );
    let missing = model(
        &[3],
        vec![node("Relu", "r", &["nowhere"], &["y"], vec![])],
        vec![],
        "y",
    );
    assert!(OnnxNet::from_model(&missing, "t")
        .unwrap_err()
        .to_string()
        .contains("nowhere"));
    // A cycle reads a value before any node defines it.
    let cycle = model(
        &[3],
        vec![
            node("Add", "a", &["x", "b_out"], &["a_out"], vec![]),
            node("Relu", "b", &["a_out"], &["b_out"], vec![]),
        ],
        vec![],
        "b_out",
    );
    assert!(OnnxNet::from_model(&cycle, "t").is_err());
    let mut old = model(
        &[3],
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        "y",
    );
    old.opset = 9;
    assert!(OnnxNet::from_model(&old, "t")
        .unwrap_err()
        .to_string()
        .contains("opset 9"));
}

#[test]
fn a_wrong_input_shape_is_an_error_naming_the_expected_one() {
    let m = model(
        &[1, 4, 4],
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        "y",
    );
    let net = OnnxNet::from_model(&m, "t").unwrap();
    let mut tape = Tape::for_inference();
    let xi = tape.leaf(Tensor::zeros(&[2, 1, 5, 4]));
    let e = net
        .forward(&mut tape, xi, Mode::Eval)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[batch, 1, 4, 4]"), "{e}");
}
