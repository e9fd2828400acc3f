//! safetensors tests: round trips, the Zennit reference fixtures, and damaged files.

use super::{awkward_f32, bits, tensor, Scratch};
use crate::io::safetensors::*;
use crate::io::{Array, IoError};
use relprop_core::Tensor;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/zennit/");

/// A safetensors file from a JSON header and a data section, as the spec lays it out.
fn st_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn params() -> Vec<(String, Tensor)> {
    let mut odd = awkward_f32();
    odd.push(f32::from_bits(0xFFC0_0001)); // negative NaN with a payload
    vec![
        ("features.conv1.weight".into(), tensor(&[2, 1, 3, 3], 1)),
        (
            "features.conv1.bias".into(),
            Tensor::from_vec(odd, &[13]).unwrap(),
        ),
        ("classifier.fc1.weight".into(), tensor(&[4, 8], 2)),
        ("empty".into(), Tensor::zeros(&[0, 3])),
    ]
}

fn assert_same(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    let mut a: Vec<_> = a.iter().collect();
    let mut b: Vec<_> = b.iter().collect();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!((na, ta.shape()), (nb, tb.shape()));
        assert_eq!(bits(ta.data()), bits(tb.data()), "{na}");
    }
}

#[test]
fn round_trip_is_bit_identical_through_bytes_and_files() {
    let p = params();
    let bytes = safetensors_bytes(&p).unwrap();
    let parsed = parse_safetensors(&bytes).unwrap();
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "classifier.fc1.weight",
            "empty",
            "features.conv1.bias",
            "features.conv1.weight"
        ]
    );
    let as_tensors: Vec<(String, Tensor)> = parsed
        .into_iter()
        .map(|(n, a)| (n, a.into_tensor().unwrap()))
        .collect();
    assert_same(&p, &as_tensors);

    let dir = Scratch::new("st-files");
    let path = dir.path("w.safetensors");
    write_safetensors(&path, &p).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "deterministic output");
    let names: Vec<String> = p.iter().map(|(n, _)| n.clone()).collect();
    assert_same(&p, &load_f32_params(&path, &names).unwrap());
    assert_eq!(read_safetensors(&path).unwrap().len(), 4);
    assert_eq!(dir.listing(), ["w.safetensors"]);
}

#[test]
fn export_refuses_duplicate_names() {
    let t = Tensor::zeros(&[2]);
    let r = safetensors_bytes(&[("a".into(), t.clone()), ("a".into(), t)]);
    assert!(matches!(r, Err(IoError::Malformed { reason, .. }) if reason.contains("`a`")));
}

#[test]
fn reads_f64_i64_u8_and_names_unsupported_dtypes() {
    let header = r#"{"__metadata__":{"format":"pt"},"f":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[2],"data_offsets":[8,24]},"u":{"dtype":"U8","shape":[2],"data_offsets":[24,26]}}"#;
    let mut data = 0.25f64.to_le_bytes().to_vec();
    data.extend_from_slice(&(-3i64).to_le_bytes());
    data.extend_from_slice(&(1i64 << 40).to_le_bytes());
    data.extend_from_slice(&[9, 250]);
    let parsed = parse_safetensors(&st_file(header, &data)).unwrap();
    assert_eq!(
        parsed[0],
        (
            "f".into(),
            Array::F64 {
                shape: vec![1],
                data: vec![0.25]
            }
        )
    );
    assert_eq!(parsed[1].1.as_i64(), Some(&[-3, 1i64 << 40][..]));
    assert_eq!(parsed[2].1.as_u8(), Some(&[9u8, 250][..]));

    let bf16 = st_file(
        r#"{"half.w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    let r = parse_safetensors(&bf16);
    assert!(
        matches!(&r, Err(IoError::UnsupportedDtype { what, dtype }) if what.contains("`half.w`") && dtype == "BF16"),
        "{r:?}"
    );
}

#[test]
fn extracting_named_f32_params_checks_names_and_dtypes() {
    let p = params();
    let bytes = safetensors_bytes(&p).unwrap();
    let got = f32_params_from_bytes(&bytes, &["features.conv1.weight", "empty"]).unwrap();
    assert_eq!(got[0].0, "features.conv1.weight");
    assert_same(&got, &[p[0].clone(), p[3].clone()]);
    let r = f32_params_from_bytes(&bytes, &["features.conv2.weight"]);
    assert_eq!(
        r.unwrap_err(),
        IoError::MissingParameter("features.conv2.weight".into())
    );

    let f64_file = st_file(
        r#"{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let r = f32_params_from_bytes(&f64_file, &["w"]);
    assert!(matches!(r, Err(IoError::UnsupportedDtype { dtype, .. }) if dtype == "F64"));
}

#[test]
fn zennit_lenet5_fixture_loads() {
    let path = format!("{FIXTURES}lenet5.safetensors");
    let all = read_safetensors(&path).unwrap();
    let find = |name: &str| &all.iter().find(|(n, _)| n == name).unwrap().1;

    let w = find("features.conv1.weight");
    assert_eq!((w.dtype(), w.shape()), ("f32", &[6, 1, 5, 5][..]));
    let x = find("x");
    assert_eq!((x.dtype(), x.shape()), ("f32", &[10, 1, 28, 28][..]));
    assert!(x.as_f32().unwrap().iter().all(|v| (0.0..1.0).contains(v)));
    let targets = find("targets");
    assert_eq!(targets.as_i64(), Some(&(0..10).collect::<Vec<i64>>()[..]));

    let rel: Vec<_> = all.iter().filter(|(n, _)| n.starts_with("rel.")).collect();
    assert!(rel.len() >= 10, "found {} rel.* tensors", rel.len());
    for (name, a) in &rel {
        assert_eq!(
            (a.dtype(), a.shape()),
            ("f64", &[10, 1, 28, 28][..]),
            "{name}"
        );
        assert!(a.as_f64().unwrap().iter().all(|v| v.is_finite()), "{name}");
    }

    let names: Vec<String> = [
        "features.conv1",
        "features.conv2",
        "classifier.fc1",
        "classifier.fc2",
        "classifier.fc3",
    ]
    .iter()
    .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
    .collect();
    let weights = load_f32_params(&path, &names).unwrap();
    assert_eq!(weights[0].1.shape(), &[6, 1, 5, 5]);
    assert_eq!(weights[5].1.shape(), &[120]);
    assert!(matches!(
        load_f32_params(&path, &["rel.gradient"]),
        Err(IoError::UnsupportedDtype { .. })
    ));
}

#[test]
fn zennit_mlp_and_vgg_fixtures_parse() {
    for model in ["mlp", "vgg_small"] {
        let all = read_safetensors(format!("{FIXTURES}{model}.safetensors")).unwrap();
        assert!(
            all.iter()
                .any(|(n, a)| n == "x" && a.shape() == [10, 1, 28, 28]),
            "{model}"
        );
        assert!(all.iter().any(|(n, _)| n == "rel.sglrp"), "{model}");
    }
}

fn small_file() -> Vec<u8> {
    safetensors_bytes(&[
        ("a".into(), Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap()),
        ("b".into(), Tensor::from_vec(vec![0.5], &[1, 1]).unwrap()),
    ])
    .unwrap()
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small_file();
    for cut in 0..bytes.len() {
        assert!(
            parse_safetensors(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
        assert!(
            f32_params_from_bytes(&bytes[..cut], &["a"]).is_err(),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn every_flipped_byte_errors_in_the_header_or_changes_one_value() {
    let bytes = small_file();
    let data_start = bytes.len() - 12;
    let original = parse_safetensors(&bytes).unwrap();
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0xFF;
        let r = parse_safetensors(&b);
        if pos < data_start {
            assert!(r.is_err(), "flipping header byte {pos} went unnoticed");
        } else {
            let changed = r
                .unwrap()
                .iter()
                .zip(&original)
                .flat_map(|((_, x), (_, y))| {
                    let (x, y) = (x.as_f32().unwrap(), y.as_f32().unwrap());
                    x.iter().zip(y).map(|(p, q)| p.to_bits() != q.to_bits())
                })
                .filter(|&c| c)
                .count();
            assert_eq!(changed, 1, "flip at {pos}");
        }
    }
}

#[test]
fn hostile_headers_are_errors_not_panics() {
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&huge),
        Err(IoError::TooLarge { .. })
    ));
    let mut long = (1u64 << 20).to_le_bytes().to_vec();
    long.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&long),
        Err(IoError::Truncated { .. })
    ));

    let case = |header: String, data: &[u8]| parse_safetensors(&st_file(&header, data));
    let r = case(
        format!(
            r#"{{"w":{{"dtype":"F32","shape":[{},4],"data_offsets":[0,16]}}}}"#,
            1u64 << 62
        ),
        &[0; 16],
    );
    assert!(
        matches!(&r, Err(IoError::TooLarge { what, .. }) if what.contains("`w`")),
        "{r:?}"
    );
    // Offsets far past the end (safetensors 0.4 itself would overflow on the second one).
    let r = case(
        format!(
            r#"{{"w":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{}]}}}}"#,
            1u64 << 38,
            1u64 << 40
        ),
        &[0; 8],
    );
    assert!(matches!(r, Err(IoError::Truncated { needed, .. }) if needed == 1 << 40));
    let r = case(
        format!(
            r#"{{"w":{{"dtype":"U8","shape":[{0}],"data_offsets":[0,{0}]}}}}"#,
            u64::MAX
        ),
        &[0; 8],
    );
    assert!(matches!(r, Err(IoError::Truncated { .. })), "{r:?}");

    for (header, data) in [
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
            &[0u8; 4][..],
        ), // size mismatch
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
            &[0; 4],
        ), // reversed
        (
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
            &[0; 12],
        ), // gap
        (
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ), // overlap
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 8],
        ), // trailing bytes
        (
            r#"{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ), // unknown dtype
        (
            r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ),
        (r#"{"w": 5}"#, &[]),
        ("not json", &[]),
        ("[1, 2]", &[]),
    ] {
        let r = parse_safetensors(&st_file(header, data));
        assert!(
            matches!(r, Err(IoError::Malformed { .. })),
            "{header}: {r:?}"
        );
    }
    let mut bad_utf8 = st_file("{\"\u{e9}\":{}}", &[]);
    bad_utf8[10] = 0xFF;
    assert!(parse_safetensors(&bad_utf8).is_err());
}
