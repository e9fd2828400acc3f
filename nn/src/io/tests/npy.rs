//! `.npy` tests. numpy is not installed on the build machines, so the Python-written
//! fixtures are spelled out byte for byte as `np.save` writes them (numpy `format.py`).

use super::{awkward_f32, bits, tensor, Scratch};
use crate::io::npy::*;
use crate::io::{Array, IoError};

/// An npy file with the given version, header dict text and data; padded like numpy.
fn npy_file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let len_bytes = if version == 1 { 2 } else { 4 };
    let mut header = dict.to_string();
    let unpadded = 8 + len_bytes + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `np.save(f, np.arange(6, dtype='<f4').reshape(2, 3))`, byte for byte.
fn numpy_arange_2x3() -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    b.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    b.extend_from_slice(&[b' '; 58]);
    b.push(b'\n');
    assert_eq!(b.len(), 128);
    b.extend_from_slice(&f32_le(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    b
}

#[test]
fn reads_numpy_written_f32_and_writes_the_same_bytes() {
    let bytes = numpy_arange_2x3();
    let a = parse_npy(&bytes).unwrap();
    assert_eq!(
        a,
        Array::F32 {
            shape: vec![2, 3],
            data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        }
    );
    assert_eq!(npy_f32_bytes(&[2, 3], a.as_f32().unwrap()).unwrap(), bytes);
}

#[test]
fn reads_numpy_written_int64_f64_u8_and_scalars() {
    // np.save(f, np.array([1, -2, 3]))
    let mut b = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    b.extend_from_slice(b"{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }");
    b.extend_from_slice(&[b' '; 60]);
    b.push(b'\n');
    [1i64, -2, 3]
        .iter()
        .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    let a = parse_npy(&b).unwrap();
    assert_eq!(a.as_i64(), Some(&[1i64, -2, 3][..]));
    assert_eq!(npy_i64_bytes(&[3], &[1, -2, 3]).unwrap(), b);

    let scalar = npy_file(
        1,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
        &0.1f64.to_le_bytes(),
    );
    let a = parse_npy(&scalar).unwrap();
    assert_eq!((a.shape(), a.as_f64()), (&[][..], Some(&[0.1f64][..])));

    let img = npy_file(
        1,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
        &[0, 7, 200, 255],
    );
    assert_eq!(
        parse_npy(&img).unwrap().as_u8(),
        Some(&[0u8, 7, 200, 255][..])
    );
}

#[test]
fn accepts_versions_2_and_3_and_header_spelling_variants() {
    let data = f32_le(&[1.5, -2.5]);
    for dict in [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}", // order, quotes
        "{'descr':'<f4','fortran_order':False,'shape':(2L,)}",             // Python 2 long
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",          // list shape
    ] {
        for version in [1, 2, 3] {
            let a = parse_npy(&npy_file(version, dict, &data)).unwrap();
            assert_eq!(a.as_f32(), Some(&[1.5f32, -2.5][..]), "{dict} v{version}");
        }
    }
}

#[test]
fn f32_and_i64_round_trips_are_bit_identical() {
    let v = awkward_f32();
    let mut with_nan = v.clone();
    with_nan.push(f32::from_bits(0x7FC0_1234)); // NaN with a payload
    let a = parse_npy(&npy_f32_bytes(&[13], &with_nan).unwrap()).unwrap();
    assert_eq!(bits(a.as_f32().unwrap()), bits(&with_nan));

    let ints = [i64::MIN, -1, 0, 1, i64::MAX, 1 << 53];
    let a = parse_npy(&npy_i64_bytes(&[2, 3], &ints).unwrap()).unwrap();
    assert_eq!((a.shape(), a.as_i64().unwrap()), (&[2, 3][..], &ints[..]));

    for shape in [vec![], vec![0], vec![3, 0, 2]] {
        let n = shape.iter().product::<usize>();
        let a = parse_npy(&npy_f32_bytes(&shape, &vec![2.0; n]).unwrap()).unwrap();
        assert_eq!(a.shape(), shape.as_slice());
    }
}

#[test]
fn file_round_trip_is_atomic_and_read_tensor_accepts_f64() {
    let dir = Scratch::new("npy-files");
    let t = tensor(&[3, 4, 5], 7);
    write_npy_f32(dir.path("x.npy"), &t).unwrap();
    let back = read_tensor(dir.path("x.npy")).unwrap();
    assert_eq!(
        (back.shape(), bits(back.data())),
        (t.shape(), bits(t.data()))
    );
    assert!(matches!(
        read_npy(dir.path("x.npy")).unwrap(),
        Array::F32 { .. }
    ));

    write_npy_i64(dir.path("y.npy"), &[2], &[4, 5]).unwrap();
    assert_eq!(
        read_npy(dir.path("y.npy")).unwrap().as_i64(),
        Some(&[4i64, 5][..])
    );
    assert!(matches!(
        read_tensor(dir.path("y.npy")),
        Err(IoError::UnsupportedDtype { .. })
    ));
    assert!(matches!(
        write_npy_i64(dir.path("z.npy"), &[3], &[1]),
        Err(IoError::Malformed { .. })
    ));

    let f64_file = npy_file(
        1,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
        &[0.1f64, 1e300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    );
    std::fs::write(dir.path("d.npy"), f64_file).unwrap();
    let t = read_tensor(dir.path("d.npy")).unwrap();
    assert_eq!(t.data()[0], 0.1f64 as f32);
    assert_eq!(t.data()[1], f32::INFINITY); // out of f32 range: rounds like numpy's astype
    assert_eq!(dir.listing(), ["d.npy", "x.npy", "y.npy"]);
    assert!(matches!(
        read_npy(dir.path("nope.npy")),
        Err(IoError::Io { .. })
    ));
}

#[test]
fn refuses_fortran_order_other_dtypes_and_bad_dicts() {
    let data = f32_le(&[1.0, 2.0]);
    let parse = |dict: &str| parse_npy(&npy_file(1, dict, &data));
    assert!(matches!(
        parse("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"),
        Err(IoError::Unsupported { .. })
    ));
    for dtype in ["'>f4'", "'<f2'", "'<i4'", "'|b1'", "[('a', '<f4')]"] {
        let r = parse(&format!(
            "{{'descr': {dtype}, 'fortran_order': False, 'shape': (2,), }}"
        ));
        assert!(
            matches!(r, Err(IoError::UnsupportedDtype { .. })),
            "{dtype}: {r:?}"
        );
    }
    for dict in [
        "{'descr': '<f4', 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': 2}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) junk",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
        "['descr']",
        "",
    ] {
        let r = parse(dict);
        assert!(matches!(r, Err(IoError::Malformed { .. })), "{dict}: {r:?}");
    }
    let deep = format!(
        "{{'descr': {}, 'fortran_order': False, 'shape': (2,)}}",
        "[".repeat(100_000)
    );
    assert!(matches!(
        parse_npy(&npy_file(2, &deep, &data)),
        Err(IoError::Malformed { .. })
    ));
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let huge = |shape: &str| {
        parse_npy(&npy_file(
            1,
            &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
            &[0; 16],
        ))
    };
    let r = huge(&format!("({}, 4)", 1u64 << 62));
    assert!(
        matches!(r, Err(IoError::TooLarge { declared, .. }) if declared == 1u128 << 66),
        "{r:?}"
    );
    assert!(matches!(
        huge(&format!("({},)", u64::MAX)),
        Err(IoError::TooLarge { .. })
    ));
    let r = huge(&format!("({},)", 1u64 << 40));
    assert!(
        matches!(r, Err(IoError::Truncated { needed, available: 16, .. }) if needed == 1 << 42)
    );
    // A zero dimension makes the array empty however large the others are.
    let r = parse_npy(&npy_file(
        1,
        &format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {0}, {0}), }}",
            1u64 << 62
        ),
        &[],
    ));
    assert_eq!(r.unwrap().numel(), 0);
    assert!(
        matches!(huge("(3,)"), Err(IoError::Malformed { .. })),
        "4 trailing bytes"
    );

    // Header lengths far beyond the file.
    let v1 = b"\x93NUMPY\x01\x00\xff\xff{}";
    assert!(matches!(
        parse_npy(v1),
        Err(IoError::Truncated { needed: 65535, .. })
    ));
    let v2 = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}";
    assert!(
        matches!(parse_npy(v2), Err(IoError::Truncated { needed, .. }) if needed == u32::MAX as u64)
    );
}

#[test]
fn bad_magic_and_versions() {
    assert!(matches!(
        parse_npy(b"PK\x03\x04 a zip file"),
        Err(IoError::BadMagic { .. })
    ));
    let mut b = numpy_arange_2x3();
    for (major, minor) in [(0, 0), (1, 1), (4, 0), (0xff, 0xff)] {
        b[6] = major;
        b[7] = minor;
        assert!(matches!(
            parse_npy(&b),
            Err(IoError::UnsupportedVersion { .. })
        ));
    }
}

#[test]
fn every_truncation_is_an_error() {
    for bytes in [numpy_arange_2x3(), npy_i64_bytes(&[2], &[9, 8]).unwrap()] {
        for cut in 0..bytes.len() {
            assert!(
                parse_npy(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes loaded"
            );
        }
        assert!(parse_npy(&bytes).is_ok());
    }
}

#[test]
fn every_flipped_byte_errors_in_the_header_or_changes_one_value() {
    let bytes = numpy_arange_2x3();
    let original = parse_npy(&bytes).unwrap();
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0xFF;
        let r = parse_npy(&b);
        if pos < 128 {
            assert!(r.is_err(), "flipping header byte {pos} went unnoticed");
        } else {
            let a = r.unwrap();
            let (old, new) = (original.as_f32().unwrap(), a.as_f32().unwrap());
            let changed = (0..6)
                .filter(|&i| old[i].to_bits() != new[i].to_bits())
                .count();
            assert_eq!(changed, 1, "flip at {pos}");
        }
    }
}
