//! `.pth` reading: both layouts of small files PyTorch wrote (tests/fixtures/pth, made by
//! scripts/make_pth_fixtures.py), hand-made hostile pickles, and corruption suites.

use crate::io::pth::zip_member;
use crate::io::{parse_pth, parse_safetensors, read_pth, Array, IoError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/pth/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn get<'a>(entries: &'a [(String, Array)], name: &str) -> &'a Array {
    &entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
        .1
}

fn f32s(a: &Array) -> (&[usize], &[f32]) {
    (a.shape(), a.as_f32().expect("f32"))
}

/// The state dict of `make_pth_fixtures.py`'s `mixed()`, checked value by value.
fn check_mixed(entries: &[(String, Array)]) {
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "grid", "row", "t", "d", "n", "u", "e", "s"]);
    let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
    assert_eq!(f32s(get(entries, "a")), (&[2, 3][..], &a[..]));
    let grid: Vec<f32> = (0..12).map(|i| i as f32).collect();
    assert_eq!(f32s(get(entries, "grid")), (&[3, 4][..], &grid[..]));
    assert_eq!(
        f32s(get(entries, "row")),
        (&[4][..], &[4.0, 5.0, 6.0, 7.0][..])
    );
    // The transpose of the 3x4 grid: row r of t is column r of grid.
    let t: Vec<f32> = (0..4)
        .flat_map(|r| (0..3).map(move |c| (c * 4 + r) as f32))
        .collect();
    assert_eq!(f32s(get(entries, "t")), (&[4, 3][..], &t[..]));
    let d = get(entries, "d");
    assert_eq!(d.as_f64().unwrap(), &[0.0, 1.0 / 3.0, 2.0 / 3.0]);
    let n = get(entries, "n");
    assert_eq!((n.shape(), n.as_i64().unwrap()), (&[][..], &[7i64][..]));
    assert_eq!(get(entries, "u").as_u8().unwrap(), &[0, 60, 120, 180]);
    assert_eq!(f32s(get(entries, "e")), (&[0, 3][..], &[][..]));
    assert_eq!(f32s(get(entries, "s")), (&[][..], &[-1.25][..]));
}

#[test]
fn both_layouts_of_one_state_dict_read_the_same() {
    check_mixed(&parse_pth(&fixture("mixed_zip.pth")).unwrap());
    check_mixed(&parse_pth(&fixture("mixed_legacy.pth")).unwrap());
}

#[test]
fn a_training_checkpoint_is_read_from_its_state_dict() {
    let entries = parse_pth(&fixture("nested_zip.pth")).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "a");
}

#[test]
fn lenet5_weights_match_the_safetensors_they_were_saved_from() {
    let path = format!(
        "{}/../tests/fixtures/pth/lenet5_legacy.pth",
        env!("CARGO_MANIFEST_DIR")
    );
    let pth = read_pth(&path).unwrap();
    let st = parse_safetensors(
        &std::fs::read(format!(
            "{}/../tests/fixtures/zennit/lenet5.safetensors",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(pth.len(), 10);
    for (name, array) in &pth {
        assert_eq!(array, get(&st, name), "{name}");
    }
}

/// A legacy-layout file around `pickle` with no storages.
fn legacy_with(pickle: &[u8]) -> Vec<u8> {
    let mut out = super::super::pth::archive_magic_for_tests().to_vec();
    out.extend_from_slice(b"\x80\x02M\xe9\x03."); // protocol version 1001
    out.extend_from_slice(b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s."); // sys info
    out.extend_from_slice(pickle);
    out.extend_from_slice(b"\x80\x02]q\x00."); // no storage keys
    out
}

#[test]
fn code_in_the_pickle_is_refused_by_name_and_never_run() {
    // os.system("touch pwned") as pickle protocol 2.
    let evil = b"\x80\x02cos\nsystem\nq\x00X\x0b\x00\x00\x00touch pwnedq\x01\x85q\x02Rq\x03.";
    let err = parse_pth(&legacy_with(evil)).unwrap_err().to_string();
    assert!(err.contains("`os.system`"), "{err}");
    assert!(!std::path::Path::new("pwned").exists());
    // The same through STACK_GLOBAL (protocol 4).
    let evil4 = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
    let err = parse_pth(&legacy_with(evil4)).unwrap_err().to_string();
    assert!(err.contains("`builtins.eval`"), "{err}");
    // An allowed name used the wrong way: a storage class called directly.
    let called = b"\x80\x02ctorch\nFloatStorage\n)R}.";
    let err = parse_pth(&legacy_with(called)).unwrap_err().to_string();
    assert!(err.contains("persistent ids"), "{err}");
}

#[test]
fn a_plain_dict_of_numbers_is_an_empty_state_dict_and_a_list_is_refused() {
    let numbers =
        b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00u.";
    assert_eq!(parse_pth(&legacy_with(numbers)).unwrap(), vec![]);
    let list = b"\x80\x02]q\x00(K\x01K\x02e.";
    let err = parse_pth(&legacy_with(list)).unwrap_err().to_string();
    assert!(err.contains("state_dict"), "{err}");
}

#[test]
fn views_outside_their_storage_are_refused() {
    // A tensor of shape [4] at offset 3 into a FloatStorage of 4 elements.
    let pickle = b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04NtQK\x03K\x04\x85K\x01\x85\x89})tRu.";
    let mut file = super::super::pth::archive_magic_for_tests().to_vec();
    file.extend_from_slice(b"\x80\x02M\xe9\x03.");
    file.extend_from_slice(b"\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");
    file.extend_from_slice(pickle);
    file.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
    file.extend_from_slice(&4u64.to_le_bytes());
    file.extend_from_slice(&[0u8; 16]);
    let err = parse_pth(&file).unwrap_err().to_string();
    assert!(err.contains("reaches outside its storage"), "{err}");
    // The same view at offset 0 fits: the file itself is well formed.
    let at = file.windows(3).position(|w| w == b"QK\x03").unwrap();
    let mut fits = file.clone();
    fits[at + 2] = 0;
    let entries = parse_pth(&fits).unwrap();
    assert_eq!(entries[0].1.as_f32().unwrap(), &[0.0; 4]);
}

#[test]
fn every_truncation_of_both_layouts_is_an_error() {
    for name in ["mixed_zip.pth", "mixed_legacy.pth"] {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            assert!(
                parse_pth(&bytes[..len]).is_err(),
                "{name} cut to {len} bytes"
            );
        }
    }
}

#[test]
fn every_flipped_byte_of_the_legacy_layout_errors_or_changes_little() {
    let bytes = fixture("mixed_legacy.pth");
    let clean = parse_pth(&bytes).unwrap();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            // Never a panic; a success still holds the same names and element counts
            // (a flipped value byte changes one number, nothing else).
            if let Ok(entries) = parse_pth(&damaged) {
                assert!(entries.len() <= clean.len() + 1, "byte {i}");
                let total: usize = entries.iter().map(|(_, a)| a.numel()).sum();
                assert!(total <= bytes.len() * 2, "byte {i}");
            }
        }
    }
}

#[test]
fn not_a_checkpoint_and_unsupported_dtypes_are_named() {
    assert!(matches!(parse_pth(b"hello"), Err(IoError::BadMagic { .. })));
    let half = b"\x80\x02}(X\x01\x00\x00\x00hctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01NtQK\x00K\x01\x85K\x01\x85\x89})tRu.";
    let mut file = super::super::pth::archive_magic_for_tests().to_vec();
    file.extend_from_slice(b"\x80\x02M\xe9\x03.");
    file.extend_from_slice(b"\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");
    file.extend_from_slice(half);
    file.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
    file.extend_from_slice(&1u64.to_le_bytes());
    file.extend_from_slice(&[0u8; 2]);
    let err = parse_pth(&file).unwrap_err();
    assert!(
        matches!(&err, IoError::UnsupportedDtype { dtype, .. } if dtype == "HalfStorage"),
        "{err}"
    );
}

#[test]
fn zip_members_are_read_within_their_limit() {
    let bytes = fixture("mixed_zip.pth");
    let pkl = zip_member(&bytes, "mixed_zip/data.pkl", 1 << 20)
        .unwrap()
        .expect("data.pkl");
    assert_eq!(pkl[..2], [0x80, 0x02]);
    let err = zip_member(&bytes, "mixed_zip/data.pkl", 10).unwrap_err();
    assert!(matches!(err, IoError::TooLarge { .. }), "{err}");
    assert_eq!(zip_member(&bytes, "absent", 1 << 20).unwrap(), None);
}
