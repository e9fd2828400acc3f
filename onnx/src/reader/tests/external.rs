//! External data: ranges of files beside the model, and locations that try to escape.

use super::*;

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

/// A FLOAT tensor of `dims` whose data is at `entries`.
fn ext(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    let mut t = tensor(name, dims, 1);
    t.data_location = 1;
    t.external_data = entries.iter().map(|(k, v)| entry(k, v)).collect();
    t
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `tensors` as `model.onnx` in `dir` and reads it back.
fn read_in(dir: &Path, tensors: Vec<TensorProto>) -> Result<OnnxModel, IoError> {
    let path = dir.join("model.onnx");
    std::fs::write(&path, model_with(tensors).encode_to_vec()).unwrap();
    read_model(&path)
}

fn err_in(dir: &Path, t: TensorProto) -> String {
    read_in(dir, vec![t]).unwrap_err().to_string()
}

#[test]
fn ranges_with_offset_and_length() {
    let dir = scratch("ext-ranges");
    // 16 bytes of padding, then [1, 2], then [3, 4, 5].
    let mut data = vec![0xEE; 16];
    data.extend(le(&[1.0, 2.0]));
    data.extend(le(&[3.0, 4.0, 5.0]));
    std::fs::write(dir.join("w.bin"), &data).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/v.bin"), le(&[7.0])).unwrap();
    let m = read_in(
        &dir,
        vec![
            ext(
                "a",
                &[2],
                &[("location", "w.bin"), ("offset", "16"), ("length", "8")],
            ),
            // No length: the rest of the file.
            ext("b", &[3], &[("location", "./w.bin"), ("offset", "24")]),
            // No offset: from the start; a checksum entry is ignored.
            ext("c", &[1], &[("location", "sub/v.bin"), ("checksum", "x")]),
        ],
    )
    .unwrap();
    let values: Vec<&ConstData> = m.graph.initializers.iter().map(|(_, t)| &t.data).collect();
    assert_eq!(values[0], &ConstData::F32(vec![1.0, 2.0]));
    assert_eq!(values[1], &ConstData::F32(vec![3.0, 4.0, 5.0]));
    assert_eq!(values[2], &ConstData::F32(vec![7.0]));
    // The same bytes through decode_model with the folder given.
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    assert_eq!(decode_model(&bytes, Some(&dir)).unwrap(), m);

    // Ranges that do not fit the file or the tensor.
    let cases = [
        (
            ext(
                "t",
                &[2],
                &[("location", "w.bin"), ("offset", "36"), ("length", "8")],
            ),
            "44 bytes are needed but only 36",
        ),
        (
            ext("t", &[2], &[("location", "w.bin"), ("offset", "37")]),
            "37 bytes are needed",
        ),
        (
            ext(
                "t",
                &[2],
                &[("location", "w.bin"), ("offset", "16"), ("length", "12")],
            ),
            "holds 12 bytes but the tensor needs 8",
        ),
        (
            ext(
                "t",
                &[2],
                &[
                    ("location", "w.bin"),
                    ("offset", "18446744073709551615"),
                    ("length", "8"),
                ],
            ),
            "truncated",
        ),
        (
            ext("t", &[2], &[("location", "w.bin"), ("offset", "-1")]),
            "not a non-negative integer",
        ),
        (ext("t", &[2], &[("offset", "0")]), "without a `location`"),
        (
            ext("t", &[2], &[("location", "w.bin"), ("location", "w.bin")]),
            "twice",
        ),
        (
            ext("t", &[2], &[("location", "missing.bin")]),
            "No such file",
        ),
        (ext("t", &[2], &[("location", "sub")]), "not a regular file"),
    ];
    for (t, expect) in cases {
        let e = err_in(&dir, t);
        assert!(
            e.contains("onnx initializer `t`") && e.contains(expect),
            "{expect}: {e}"
        );
    }
    // External data that also holds inline data.
    let mut t = ext(
        "t",
        &[2],
        &[("location", "w.bin"), ("offset", "16"), ("length", "8")],
    );
    t.raw_data = Some(vec![0; 8]);
    assert!(err_in(&dir, t).contains("also holds raw_data"));
    // Without a folder, external data is refused by name.
    let t = ext(
        "t",
        &[2],
        &[("location", "w.bin"), ("offset", "16"), ("length", "8")],
    );
    let e = decode(&model_with(vec![t])).unwrap_err().to_string();
    assert!(
        e.contains("onnx initializer `t`") && e.contains("w.bin"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_bytes_cannot_be_read_twice_over() {
    // Two tensors each claiming the whole file would let a small model multiply the
    // memory spent on one large file.
    let dir = scratch("ext-overlap");
    std::fs::write(dir.join("w.bin"), le(&[1.0, 2.0])).unwrap();
    let a = ext("a", &[2], &[("location", "w.bin")]);
    let b = ext("b", &[2], &[("location", "./w.bin")]);
    let e = read_in(&dir, vec![a, b]).unwrap_err().to_string();
    assert!(
        e.contains("onnx initializer `b`") && e.contains("overlapping"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn locations_outside_the_folder_are_refused() {
    let outside = scratch("ext-outside");
    std::fs::write(outside.join("secret.bin"), le(&[1.0, 2.0])).unwrap();
    let dir = scratch("ext-inside");
    let secret = outside.join("secret.bin");
    let up = format!(
        "../{}/secret.bin",
        outside.file_name().unwrap().to_str().unwrap()
    );
    let abs = secret.to_str().unwrap().to_string();
    for (loc, expect) in [
        (up.as_str(), "climbs out"),
        ("sub/../../x.bin", "climbs out"),
        (abs.as_str(), "absolute"),
        ("", "empty"),
    ] {
        let e = err_in(&dir, ext("t", &[2], &[("location", loc)]));
        assert!(
            e.contains("onnx initializer `t`") && e.contains(expect),
            "{loc}: {e}"
        );
        assert!(e.contains("model's folder"), "{e}");
    }
    #[cfg(unix)]
    {
        // A symbolic link inside the folder pointing out of it.
        std::os::unix::fs::symlink(&secret, dir.join("link.bin")).unwrap();
        let e = err_in(&dir, ext("t", &[2], &[("location", "link.bin")]));
        assert!(e.contains("symbolic link"), "{e}");
        std::os::unix::fs::symlink(&outside, dir.join("linkdir")).unwrap();
        let e = err_in(&dir, ext("t", &[2], &[("location", "linkdir/secret.bin")]));
        assert!(e.contains("symbolic link"), "{e}");
        // A link that stays inside the folder is fine.
        std::fs::write(dir.join("real.bin"), le(&[5.0, 6.0])).unwrap();
        std::os::unix::fs::symlink(dir.join("real.bin"), dir.join("alias.bin")).unwrap();
        let m = read_in(&dir, vec![ext("t", &[2], &[("location", "alias.bin")])]).unwrap();
        assert_eq!(
            m.graph.initializers[0].1.data,
            ConstData::F32(vec![5.0, 6.0])
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&outside);
}
