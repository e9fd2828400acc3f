//! Element types, data fields and shapes of hand-built tensors.

use super::*;

#[test]
fn float_data_int64_data_and_double_data() {
    let mut t = tensor("w", &[2, 3], 1);
    t.float_data = vec![1.0, -2.5, 0.0, 3.25, f32::MAX, -0.0];
    let c = only_tensor(t.clone()).unwrap();
    assert_eq!(c.dims, [2, 3]);
    assert_eq!(c.data, ConstData::F32(t.float_data));

    let mut t = tensor("shape", &[3], 7);
    t.int64_data = vec![-1, i64::MAX, 7];
    assert_eq!(
        only_tensor(t).unwrap().data,
        ConstData::I64(vec![-1, i64::MAX, 7])
    );

    // Doubles are rounded to the nearest f32 (0.1 is not exact in either).
    let mut t = tensor("d", &[2], 11);
    t.double_data = vec![0.1, -1e300];
    assert_eq!(
        only_tensor(t).unwrap().data,
        ConstData::F32(vec![0.1f32, f32::NEG_INFINITY])
    );

    // A scalar has no dims and one element.
    let mut t = tensor("s", &[], 1);
    t.float_data = vec![0.5];
    let c = only_tensor(t).unwrap();
    assert!(c.dims.is_empty());
    assert_eq!(c.data, ConstData::F32(vec![0.5]));
}

#[test]
fn raw_data_of_every_supported_type() {
    let cases: Vec<(i32, Vec<u8>, ConstData)> = vec![
        (
            1,
            [1.5f32, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ConstData::F32(vec![1.5, -2.0]),
        ),
        (
            11,
            [0.25f64, 3.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ConstData::F32(vec![0.25, 3.0]),
        ),
        // FLOAT16 1.0 = 0x3C00, -2.0 = 0xC000.
        (
            10,
            vec![0x00, 0x3C, 0x00, 0xC0],
            ConstData::F32(vec![1.0, -2.0]),
        ),
        // BFLOAT16 1.0 = 0x3F80, -0.5 = 0xBF00.
        (
            16,
            vec![0x80, 0x3F, 0x00, 0xBF],
            ConstData::F32(vec![1.0, -0.5]),
        ),
        (2, vec![0, 255], ConstData::I64(vec![0, 255])),
        (3, vec![0x80, 0x7F], ConstData::I64(vec![-128, 127])),
        (
            5,
            vec![0x00, 0x80, 0xFF, 0x7F],
            ConstData::I64(vec![-32768, 32767]),
        ),
        (
            6,
            vec![0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0],
            ConstData::I64(vec![-1, 2]),
        ),
        (
            7,
            [-3i64, 1 << 40]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ConstData::I64(vec![-3, 1 << 40]),
        ),
        (9, vec![0, 1], ConstData::I64(vec![0, 1])),
    ];
    for (dtype, raw, expected) in cases {
        let mut t = tensor("r", &[2], dtype);
        t.raw_data = Some(raw.clone());
        assert_eq!(
            only_tensor(t.clone()).unwrap().data,
            expected,
            "type {dtype}"
        );
        // One byte short or long is refused, naming the tensor.
        for bad in [raw.len() - 1, raw.len() + 1] {
            let mut t = t.clone();
            t.raw_data = Some(vec![0; bad]);
            let e = only_tensor(t).unwrap_err().to_string();
            assert!(e.contains("onnx initializer `r`"), "{e}");
        }
    }
}

#[test]
fn float16_values() {
    // Reference values of IEEE 754 binary16 bit patterns.
    let cases: [(u16, f32); 9] = [
        (0x3C00, 1.0),
        (0xC000, -2.0),
        (0x7BFF, 65504.0),
        (0x0400, 6.103_515_6e-5), // smallest normal, 2^-14
        (0x0001, 5.960_464_5e-8), // smallest subnormal, 2^-24
        (0x03FF, 6.097_555e-5),   // largest subnormal
        (0x3555, 0.333_251_95),
        (0x7C00, f32::INFINITY),
        (0xFC00, f32::NEG_INFINITY),
    ];
    for (bits, value) in cases {
        assert_eq!(tensor::f16_to_f32(bits), value, "{bits:#06x}");
    }
    assert!(tensor::f16_to_f32(0x7E00).is_nan());
    assert!(tensor::f16_to_f32(0x8000).is_sign_negative());
    // FLOAT16 in int32_data carries the bit patterns (either sign extension).
    let mut t = tensor("h", &[3], 10);
    t.int32_data = vec![0x3C00, 0xC000, 0xC000u16 as i16 as i32];
    assert_eq!(
        only_tensor(t).unwrap().data,
        ConstData::F32(vec![1.0, -2.0, -2.0])
    );
}

#[test]
fn int32_data_carries_narrow_integers_and_checks_their_range() {
    for (dtype, values, expected) in [
        (3, vec![-128, 127], vec![-128i64, 127]),
        (2, vec![0, 255], vec![0, 255]),
        (5, vec![-32768, 5], vec![-32768, 5]),
        (
            6,
            vec![i32::MIN, i32::MAX],
            vec![i32::MIN as i64, i32::MAX as i64],
        ),
        (9, vec![0, 1], vec![0, 1]),
    ] {
        let mut t = tensor("n", &[2], dtype);
        t.int32_data = values;
        assert_eq!(only_tensor(t).unwrap().data, ConstData::I64(expected));
    }
    for (dtype, bad) in [
        (3, 128),
        (3, -129),
        (2, -1),
        (2, 256),
        (5, 40000),
        (10, 70000),
    ] {
        let mut t = tensor("n", &[1], dtype);
        t.int32_data = vec![bad];
        let e = only_tensor(t).unwrap_err().to_string();
        assert!(
            e.contains("outside the range"),
            "type {dtype} value {bad}: {e}"
        );
    }
}

#[test]
fn data_in_the_wrong_field_or_count_is_refused() {
    // FLOAT in int64_data, INT64 in float_data, two fields at once, wrong counts, no data.
    let mut a = tensor("a", &[2], 1);
    a.int64_data = vec![1, 2];
    let mut b = tensor("b", &[2], 7);
    b.float_data = vec![1.0, 2.0];
    let mut c = tensor("c", &[2], 1);
    c.float_data = vec![1.0, 2.0];
    c.raw_data = Some(vec![0; 8]);
    let mut d = tensor("d", &[3], 1);
    d.float_data = vec![1.0, 2.0];
    let mut e = tensor("e", &[1], 7);
    e.int64_data = vec![1, 2];
    let f = tensor("f", &[4], 1);
    for (t, expect) in [
        (a, "int64_data"),
        (b, "float_data"),
        (c, "both raw_data and float_data"),
        (d, "holds 2 values"),
        (e, "holds 2 values"),
        (f, "no data for its 4 elements"),
    ] {
        let name = t.name.clone();
        let err = only_tensor(t).unwrap_err().to_string();
        assert!(err.contains(&format!("onnx initializer `{name}`")), "{err}");
        assert!(err.contains(expect), "{err}");
    }
    // Zero elements need no data.
    let c = only_tensor(tensor("z", &[0, 5], 1)).unwrap();
    assert_eq!(c.dims, [0, 5]);
    assert_eq!(c.data, ConstData::F32(vec![]));
}

#[test]
fn unsupported_types_are_named() {
    for (code, name) in [
        (8, "STRING"),
        (12, "UINT32"),
        (14, "COMPLEX64"),
        (17, "FLOAT8E4M3FN"),
        (0, "UNDEFINED"),
        (99, "99"),
    ] {
        let mut t = tensor("odd", &[1], code);
        t.raw_data = Some(vec![0; 16]);
        let err = only_tensor(t).unwrap_err();
        assert!(matches!(err, IoError::UnsupportedDtype { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("onnx initializer `odd`"),
            "{msg}"
        );
    }
}

#[test]
fn negative_and_huge_dims_are_refused_without_allocating() {
    let mut t = tensor("neg", &[2, -1], 1);
    t.float_data = vec![1.0, 2.0];
    let e = only_tensor(t).unwrap_err().to_string();
    assert!(e.contains("dimension 1 is -1"), "{e}");
    // 2^80 elements: more than can be addressed; 2^40 x 4 bytes: addressable, but the
    // data present (8 bytes) does not match, which is found before allocating.
    let mut t = tensor("huge", &[1 << 40, 1 << 40], 1);
    t.raw_data = Some(vec![0; 8]);
    assert!(matches!(
        only_tensor(t).unwrap_err(),
        IoError::TooLarge { .. }
    ));
    let mut t = tensor("big", &[1 << 40], 1);
    t.raw_data = Some(vec![0; 8]);
    assert!(matches!(
        only_tensor(t).unwrap_err(),
        IoError::Truncated { needed, available: 8, .. } if needed == 1 << 42
    ));
    let mut t = tensor("big", &[1 << 40], 1);
    t.float_data = vec![0.0; 2];
    assert!(only_tensor(t).is_err());
    // Empty, but its other dims overflow: refused too (strides would overflow).
    let mut t = tensor("wrap", &[i64::MAX, i64::MAX, 0], 1);
    t.raw_data = Some(vec![]);
    assert!(matches!(
        only_tensor(t).unwrap_err(),
        IoError::TooLarge { .. }
    ));
    let mut t = tensor("empty", &[1 << 20, 0], 1);
    t.raw_data = Some(vec![]);
    assert_eq!(only_tensor(t).unwrap().dims, [1 << 20, 0]);
}

#[test]
fn attributes_of_every_kind() {
    let attr = |name: &str, kind: i32| AttributeProto {
        name: name.into(),
        r#type: Some(kind),
        ..Default::default()
    };
    let mut value = tensor("", &[2], 7);
    value.int64_data = vec![4, -4];
    let mut m = model_with(vec![]);
    let graph = m.graph.as_mut().unwrap();
    graph.node[0].attribute = vec![
        AttributeProto {
            f: Some(0.5),
            ..attr("f", 1)
        },
        AttributeProto {
            i: Some(-3),
            ..attr("i", 2)
        },
        AttributeProto {
            s: Some(b"NOTSET".to_vec()),
            ..attr("s", 3)
        },
        AttributeProto {
            t: Some(Box::new(value)),
            ..attr("t", 4)
        },
        AttributeProto {
            g: Some(Box::default()),
            ..attr("g", 5)
        },
        AttributeProto {
            floats: vec![1.0, 2.0],
            ..attr("fs", 6)
        },
        AttributeProto {
            ints: vec![1, 2, 3],
            ..attr("is", 7)
        },
        AttributeProto {
            strings: vec![b"a".to_vec()],
            ..attr("ss", 8)
        },
        // Proto3 writers omit zero scalars: an INT without `i` is 0.
        attr("zero", 2),
        // IR version 1 files have no type: the value present says which.
        AttributeProto {
            ints: vec![9],
            r#type: None,
            ..attr("old", 0)
        },
    ];
    let node = &decode(&m).unwrap().graph.nodes[0];
    assert_eq!(node.attr("f"), Some(&AttrValue::Float(0.5)));
    assert_eq!(node.attr("i"), Some(&AttrValue::Int(-3)));
    assert_eq!(node.attr("s"), Some(&AttrValue::String("NOTSET".into())));
    let t = ConstTensor {
        dims: vec![2],
        data: ConstData::I64(vec![4, -4]),
    };
    assert_eq!(node.attr("t"), Some(&AttrValue::Tensor(t)));
    assert_eq!(node.attr("g"), Some(&AttrValue::Other("graph")));
    assert_eq!(node.attr("fs"), Some(&AttrValue::Floats(vec![1.0, 2.0])));
    assert_eq!(node.attr("is"), Some(&AttrValue::Ints(vec![1, 2, 3])));
    assert_eq!(node.attr("ss"), Some(&AttrValue::Other("strings")));
    assert_eq!(node.attr("zero"), Some(&AttrValue::Int(0)));
    assert_eq!(node.attr("old"), Some(&AttrValue::Ints(vec![9])));

    // A bad tensor inside an attribute is named by node and attribute.
    let graph = m.graph.as_mut().unwrap();
    let mut bad = tensor("", &[3], 1);
    bad.float_data = vec![1.0];
    graph.node[0].attribute = vec![AttributeProto {
        t: Some(Box::new(bad)),
        ..attr("value", 4)
    }];
    let e = decode(&m).unwrap_err().to_string();
    assert!(
        e.contains("onnx node `id` (Identity) attribute `value`"),
        "{e}"
    );
    graph_attr_duplicates_refused(&mut m);
}

fn graph_attr_duplicates_refused(m: &mut ModelProto) {
    let graph = m.graph.as_mut().unwrap();
    let a = AttributeProto {
        name: "k".into(),
        i: Some(1),
        r#type: Some(2),
        ..Default::default()
    };
    graph.node[0].attribute = vec![a.clone(), a];
    let e = decode(m).unwrap_err().to_string();
    assert!(e.contains("attribute `k`") && e.contains("twice"), "{e}");
}

#[test]
fn inputs_exclude_initializers_and_keep_dynamic_dims() {
    let mut w = tensor("w", &[1], 1);
    w.float_data = vec![2.0];
    let m = decode(&model_with(vec![w])).unwrap();
    assert_eq!(m.opset, 17);
    assert_eq!(m.producer, "hand 1");
    assert_eq!(m.graph.inputs.len(), 1);
    assert_eq!(m.graph.inputs[0].name, "x");
    assert_eq!(
        m.graph.inputs[0].dims,
        [Dim::Dynamic("batch".into()), Dim::Fixed(3)]
    );
    assert_eq!(m.graph.outputs[0].name, "y");
    assert!(m.graph.outputs[0].dims.is_empty());
    assert_eq!(m.graph.nodes[0].inputs, ["w"]);
}
