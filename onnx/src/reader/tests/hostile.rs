//! Damaged, truncated and hostile files: always an error naming onnx, never a panic.

use super::*;

fn fixture_bytes(name: &str) -> (Vec<u8>, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/onnx");
    (std::fs::read(dir.join(name)).unwrap(), dir)
}

fn assert_onnx_error(r: Result<OnnxModel, IoError>, what: &str) {
    if let Err(e) = r {
        let msg = e.to_string();
        assert!(msg.contains("onnx"), "{what}: {msg}");
    }
}

/// A small model exercising every data field, attributes and both dim kinds.
fn rich_model() -> ModelProto {
    let mut a = tensor("a", &[2, 2], 1);
    a.raw_data = Some(
        [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    );
    let mut b = tensor("b", &[3], 7);
    b.int64_data = vec![1, -1, 300];
    let mut c = tensor("c", &[2], 10);
    c.int32_data = vec![0x3C00, 0x4000];
    let mut d = tensor("d", &[1], 11);
    d.double_data = vec![2.5];
    let mut m = model_with(vec![a, b, c, d]);
    m.graph.as_mut().unwrap().node[0].attribute = vec![AttributeProto {
        name: "perm".into(),
        ints: vec![0, 2, 1],
        r#type: Some(7),
        ..Default::default()
    }];
    m
}

#[test]
fn every_prefix_is_an_error_or_a_model() {
    let full = rich_model().encode_to_vec();
    assert!(decode_model(&full, None).is_ok());
    let mut loaded = 0;
    for cut in 0..full.len() {
        let r = decode_model(&full[..cut], None);
        loaded += usize::from(r.is_ok());
        assert_onnx_error(r, &format!("rich model cut at {cut}"));
    }
    // Cuts between top-level fields can leave a valid message, but most cannot.
    assert!(loaded < full.len() / 4, "{loaded} prefixes loaded");

    let (bytes, dir) = fixture_bytes("small_resnet.onnx");
    let mut refused = 0;
    for cut in 0..bytes.len() {
        let r = decode_model(&bytes[..cut], Some(&dir));
        refused += usize::from(r.is_err());
        assert_onnx_error(r, &format!("small_resnet cut at {cut}"));
    }
    assert!(refused > bytes.len() / 2, "{refused} of {}", bytes.len());
}

#[test]
fn flipped_bytes_are_errors_or_other_models() {
    let (bytes, dir) = fixture_bytes("small_resnet.onnx");
    for at in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[at] ^= mask;
            assert_onnx_error(decode_model(&b, Some(&dir)), &format!("byte {at} ^ {mask}"));
        }
    }
}

/// Encodes a field tag and a varint by hand, to declare sizes the bytes do not back.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[test]
fn declared_lengths_beyond_the_input_are_refused() {
    // graph (field 7) declaring 2^40 bytes; a tensor's raw_data declaring 2^62 bytes.
    let mut a = vec![7 << 3 | 2];
    varint(1 << 40, &mut a);
    a.extend_from_slice(&[0; 16]);
    let mut tensor_body = vec![9 << 3 | 2];
    varint(1 << 62, &mut tensor_body);
    tensor_body.extend_from_slice(&[1, 2, 3]);
    let mut graph = vec![5 << 3 | 2];
    varint(tensor_body.len() as u64, &mut graph);
    graph.extend_from_slice(&tensor_body);
    let mut b = vec![7 << 3 | 2];
    varint(graph.len() as u64, &mut b);
    b.extend_from_slice(&graph);
    for bytes in [a, b] {
        let e = decode_model(&bytes, None).unwrap_err().to_string();
        assert!(e.contains("onnx model") && e.contains("protobuf"), "{e}");
    }
}

#[test]
fn deep_subgraph_nesting_is_refused_not_a_stack_overflow() {
    let mut g = GraphProto::default();
    for _ in 0..200 {
        g = GraphProto {
            node: vec![NodeProto {
                op_type: "If".into(),
                attribute: vec![AttributeProto {
                    name: "then_branch".into(),
                    r#type: Some(5),
                    g: Some(Box::new(g)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    let mut m = model_with(vec![]);
    m.graph = Some(Box::new(g));
    let e = decode(&m).unwrap_err().to_string();
    assert!(e.contains("onnx model") && e.contains("recursion"), "{e}");
}

#[test]
fn structural_errors_name_the_part() {
    let with = |f: &dyn Fn(&mut ModelProto)| {
        let mut m = rich_model();
        f(&mut m);
        decode(&m).unwrap_err().to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            with(&|m| m.opset_import.clear()),
            "no version of the default",
        ),
        (
            with(&|m| m.opset_import[0].domain = "com.microsoft".into()),
            "no version of the default",
        ),
        (
            with(&|m| {
                m.opset_import.push(OperatorSetIdProto {
                    domain: "ai.onnx".into(),
                    version: Some(9),
                })
            }),
            "versions 17 and 9",
        ),
        (
            with(&|m| m.opset_import[0].version = None),
            "has no version",
        ),
        (with(&|m| m.graph = None), "holds no graph"),
        (
            with(&|m| m.graph.as_mut().unwrap().node[0].op_type.clear()),
            "onnx node `id` (): malformed file: has no op_type",
        ),
        (
            with(&|m| m.graph.as_mut().unwrap().initializer[1].name = "a".into()),
            "onnx initializer `a`: malformed file: the name is used twice",
        ),
        (
            with(&|m| m.graph.as_mut().unwrap().initializer[0].name.clear()),
            "onnx initializer #0",
        ),
        (
            with(&|m| {
                let dim = &mut m.graph.as_mut().unwrap().input[0];
                let shape = dim.r#type.as_mut().unwrap().tensor_type.as_mut().unwrap();
                shape.shape.as_mut().unwrap().dim[1].value = Some(DimensionValue::DimValue(-3))
            }),
            "onnx graph input `x`",
        ),
        (
            with(&|m| m.graph.as_mut().unwrap().initializer[0].data_location = 7),
            "data_location is 7",
        ),
    ];
    for (msg, expect) in cases {
        assert!(msg.contains(expect), "{expect}: {msg}");
        assert!(msg.contains("onnx"), "{msg}");
    }
    // Names must be UTF-8 (prost checks protobuf strings).
    let mut bytes = rich_model().encode_to_vec();
    let at = bytes.windows(5).position(|w| w == b"batch").unwrap();
    bytes[at] = 0xFF;
    let e = decode_model(&bytes, None).unwrap_err().to_string();
    assert!(e.contains("onnx model") && e.contains("UTF-8"), "{e}");
}

#[test]
fn non_regular_and_oversized_files_are_refused() {
    let dir = scratch("nonregular");
    let e = read_model(&dir).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    #[cfg(unix)]
    {
        let dev = Path::new("/dev/zero");
        if dev.exists() {
            let e = read_model(dev).unwrap_err().to_string();
            assert!(
                e.contains("onnx model") && e.contains("not a regular file"),
                "{e}"
            );
        }
        let sock = dir.join("sock.onnx");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read_model(&sock).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A FIFO would block the open, or never end, if it were opened.
        let fifo = dir.join("fifo.onnx");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_model(&fifo).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }
    // A sparse file just over the protobuf limit: refused by its size, not read.
    let big = dir.join("big.onnx");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_MODEL_BYTES + 1).unwrap();
    let e = read_model(&big).unwrap_err();
    assert!(matches!(e, IoError::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("onnx model"), "{e}");
    let missing = read_model(&dir.join("missing.onnx")).unwrap_err();
    assert!(matches!(
        missing,
        IoError::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runs_of_empty_sub_messages_are_refused_before_decoding() {
    // Each empty attribute is 2 bytes in the file and a struct of a few hundred decoded.
    let mut m = rich_model();
    m.graph.as_mut().unwrap().node[0].attribute = vec![AttributeProto::default(); 100_000];
    let bytes = m.encode_to_vec();
    assert!(bytes.len() < 300_000, "{}", bytes.len());
    let e = decode_model(&bytes, None).unwrap_err();
    assert!(matches!(e, IoError::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("onnx model"), "{e}");
    // A few of them fit the allowance and reach the ordinary checks.
    m.graph.as_mut().unwrap().node[0].attribute.truncate(1000);
    let e = decode(&m).unwrap_err().to_string();
    assert!(
        e.contains("attribute ``") && e.contains("has no name"),
        "{e}"
    );
}
