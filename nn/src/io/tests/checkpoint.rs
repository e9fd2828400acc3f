//! Checkpoint tests: round trips, validation against a model, and damaged or hostile
//! files. Hostile bodies are written by hand in bincode's documented varint format
//! (lengths < 251 in one byte, 253 + u64 for large ones) so bincode stays in one file.

use super::{awkward_f32, bits, tensor, Scratch};
use crate::io::crc32;
use crate::io::{Checkpoint, IoError, TrainingMeta};
use relprop_core::Tensor;

fn sample() -> Checkpoint {
    Checkpoint {
        architecture: "lenet5".into(),
        params: vec![
            ("features.conv1.weight".into(), tensor(&[6, 1, 5, 5], 3)),
            (
                "features.conv1.bias".into(),
                Tensor::from_vec(awkward_f32(), &[12]).unwrap(),
            ),
            ("classifier.fc1.weight".into(), tensor(&[4, 6], 4)),
            ("scalar".into(), Tensor::scalar(-0.0)),
        ],
        meta: TrainingMeta {
            data: "mnist train 60k, /255".into(),
            epochs: 12,
            seed: u64::MAX - 1,
            held_out_accuracy: Some(0.9875),
            notes: "Adam lr=1e-3 — ünïcode ok".into(),
        },
    }
}

fn small() -> Checkpoint {
    Checkpoint {
        architecture: "m".into(),
        params: vec![
            ("w".into(), Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap()),
            ("b".into(), Tensor::from_vec(vec![0.5], &[1]).unwrap()),
        ],
        meta: TrainingMeta::default(),
    }
}

/// magic + version + body + CRC, for hand-written bodies.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = b"RELPROP\0".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Replaces the CRC after editing covered bytes, so the edit reaches the decoder.
fn refresh_crc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// bincode varint of a length too large for one byte.
fn big_len(v: u64) -> Vec<u8> {
    let mut out = vec![253];
    out.extend_from_slice(&v.to_le_bytes());
    out
}

/// Empty default meta: data "", epochs 0, seed 0, accuracy None, notes "".
const EMPTY_META: [u8; 5] = [0, 0, 0, 0, 0];

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn round_trip_is_bit_identical() {
    let c = sample();
    let bytes = c.to_bytes().unwrap();
    assert_eq!(&bytes[..12], b"RELPROP\0\x01\0\0\0");
    let back = Checkpoint::from_bytes(&bytes).unwrap();
    assert_eq!((&back.architecture, &back.meta), (&c.architecture, &c.meta));
    assert_eq!(back.params.len(), c.params.len());
    for ((na, ta), (nb, tb)) in back.params.iter().zip(&c.params) {
        assert_eq!((na, ta.shape()), (nb, tb.shape()));
        assert_eq!(bits(ta.data()), bits(tb.data()), "{na}");
    }
    assert_eq!(
        back.get("scalar").unwrap().data()[0].to_bits(),
        (-0.0f32).to_bits()
    );
    assert_eq!(back.to_bytes().unwrap(), bytes, "encoding is deterministic");
    let empty = Checkpoint::default();
    assert_eq!(
        Checkpoint::from_bytes(&empty.to_bytes().unwrap()).unwrap(),
        empty
    );
}

#[test]
fn save_replaces_atomically_and_failed_saves_keep_the_old_file() {
    let dir = Scratch::new("ckpt");
    let path = dir.path("model.ckpt");
    small().save(&path).unwrap();
    let c = sample();
    c.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().meta, c.meta);

    let mut bad = small();
    bad.params[0].1 = Tensor::from_vec(vec![1.0, f32::NAN], &[2]).unwrap();
    assert_eq!(
        bad.save(&path).unwrap_err(),
        IoError::NonFinite { name: "w".into() }
    );
    assert_eq!(
        Checkpoint::load(&path).unwrap().meta,
        c.meta,
        "old file intact"
    );
    assert_eq!(dir.listing(), ["model.ckpt"]);
    assert!(matches!(
        Checkpoint::load(dir.path("none")),
        Err(IoError::Io { .. })
    ));
}

#[test]
fn to_bytes_refuses_non_finite_and_duplicate_params() {
    let mut c = small();
    c.params[1].1 = Tensor::from_vec(vec![f32::NEG_INFINITY], &[1]).unwrap();
    assert_eq!(
        c.to_bytes().unwrap_err(),
        IoError::NonFinite { name: "b".into() }
    );
    let mut c = small();
    c.params[1].0 = "w".into();
    assert!(matches!(c.to_bytes(), Err(IoError::Malformed { .. })));
}

#[test]
fn validate_reports_each_mismatch() {
    let c = small();
    let exp = |list: &[(&str, &[usize])]| -> Vec<(String, Vec<usize>)> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.to_vec()))
            .collect()
    };
    assert_eq!(c.validate("m", &exp(&[("b", &[1]), ("w", &[2])])), Ok(()));
    assert_eq!(
        c.validate("lenet5", &exp(&[("w", &[2]), ("b", &[1])])),
        Err(IoError::WrongArchitecture {
            expected: "lenet5".into(),
            found: "m".into()
        })
    );
    assert_eq!(
        c.validate("m", &exp(&[("w", &[2]), ("b", &[1]), ("c", &[1])])),
        Err(IoError::MissingParameter("c".into()))
    );
    let e = c
        .validate("m", &exp(&[("w", &[1, 2]), ("b", &[1])]))
        .unwrap_err();
    assert_eq!(
        e,
        IoError::WrongShape {
            name: "w".into(),
            expected: vec![1, 2],
            found: vec![2]
        }
    );
    assert_eq!(
        e.to_string(),
        "checkpoint: parameter w has shape [2] but the model expects [1, 2]"
    );
    assert_eq!(
        c.validate("m", &exp(&[("w", &[2])])),
        Err(IoError::UnexpectedParameter("b".into()))
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small().to_bytes().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            Checkpoint::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Checkpoint::from_bytes(&longer).is_err());
}

#[test]
fn every_flipped_byte_is_detected() {
    let bytes = small().to_bytes().unwrap();
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0xFF;
        match (pos, Checkpoint::from_bytes(&b)) {
            (0..=7, Err(IoError::BadMagic { .. })) => {}
            (8..=11, Err(IoError::UnsupportedVersion { .. })) => {}
            (12.., Err(IoError::Malformed { what, reason })) => {
                assert_eq!(
                    (what.as_str(), reason.as_str()),
                    ("checkpoint", "checksum mismatch")
                )
            }
            (pos, other) => panic!("flip at {pos}: {other:?}"),
        }
    }
}

#[test]
fn nan_payloads_are_refused_by_name() {
    for bad in [f32::NAN, f32::from_bits(0x7F80_0001), f32::INFINITY] {
        let mut bytes = small().to_bytes().unwrap();
        let two = 2.0f32.to_le_bytes();
        let at = bytes.windows(4).position(|w| w == two).unwrap();
        bytes[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        refresh_crc(&mut bytes);
        assert_eq!(
            Checkpoint::from_bytes(&bytes).unwrap_err(),
            IoError::NonFinite { name: "w".into() }
        );
    }
}

#[test]
fn hand_written_bodies_decode_as_documented() {
    // architecture "m", one param "w" of shape [2] = [1.0, 2.0], default meta.
    let mut body = vec![1, b'm', 1, 1, b'w', 1, 2, 2];
    body.extend_from_slice(&1.0f32.to_le_bytes());
    body.extend_from_slice(&2.0f32.to_le_bytes());
    body.extend_from_slice(&EMPTY_META);
    let c = Checkpoint::from_bytes(&framed(&body)).unwrap();
    assert_eq!((c.architecture.as_str(), c.params.len()), ("m", 1));
    assert_eq!(c.get("w").unwrap().data(), &[1.0, 2.0]);

    // Same, with the second name renamed into a duplicate.
    let mut dup = vec![1, b'm', 2, 1, b'w', 1, 1, 1];
    dup.extend_from_slice(&1.0f32.to_le_bytes());
    dup.extend_from_slice(&[1, b'w', 1, 1, 1]);
    dup.extend_from_slice(&1.0f32.to_le_bytes());
    dup.extend_from_slice(&EMPTY_META);
    assert!(matches!(
        Checkpoint::from_bytes(&framed(&dup)),
        Err(IoError::Malformed { .. })
    ));

    // Trailing bytes under the checksum.
    let mut trailing = body.clone();
    trailing.push(0);
    assert!(matches!(
        Checkpoint::from_bytes(&framed(&trailing)),
        Err(IoError::Malformed { .. })
    ));

    // Shape [3] but two values.
    let mut short = body.clone();
    short[6] = 3;
    let r = Checkpoint::from_bytes(&framed(&short));
    assert!(
        matches!(&r, Err(IoError::Malformed { reason, .. }) if reason.contains("parameter w")),
        "{r:?}"
    );
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    // Architecture string of length 2^60.
    let mut body = big_len(1 << 60);
    body.extend_from_slice(b"lenet5");
    let r = Checkpoint::from_bytes(&framed(&body));
    assert!(matches!(r, Err(IoError::Malformed { .. })), "{r:?}");

    // Parameter count, shape length and data length of 2^60.
    for which in 0..3 {
        let mut body = vec![1, b'm'];
        body.extend(if which == 0 {
            big_len(1 << 60)
        } else {
            vec![1]
        });
        body.extend_from_slice(&[1, b'w']);
        body.extend(if which == 1 {
            big_len(1 << 60)
        } else {
            vec![1, 2]
        });
        body.extend(if which == 2 {
            big_len(1 << 60)
        } else {
            vec![2]
        });
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&EMPTY_META);
        let r = Checkpoint::from_bytes(&framed(&body));
        assert!(
            matches!(r, Err(IoError::Malformed { .. })),
            "case {which}: {r:?}"
        );
    }

    // Shape [2^62, 4] with no data: the product overflows.
    let mut body = vec![1, b'm', 1, 1, b'w', 2];
    body.extend(big_len(1 << 62));
    body.extend_from_slice(&[4, 0]);
    body.extend_from_slice(&EMPTY_META);
    let r = Checkpoint::from_bytes(&framed(&body));
    assert!(
        matches!(r, Err(IoError::TooLarge { declared, .. }) if declared == 1u128 << 66),
        "{r:?}"
    );
}

#[test]
fn bad_magic_and_version() {
    let mut bytes = small().to_bytes().unwrap();
    assert!(matches!(
        Checkpoint::from_bytes(b"\x93NUMPY"),
        Err(IoError::BadMagic { .. })
    ));
    assert!(matches!(
        Checkpoint::from_bytes(b"RELPR"),
        Err(IoError::Truncated { .. })
    ));
    bytes[8] = 2;
    refresh_crc(&mut bytes);
    let e = Checkpoint::from_bytes(&bytes).unwrap_err();
    assert_eq!(
        e,
        IoError::UnsupportedVersion {
            what: "checkpoint".into(),
            found: "2".into(),
            supported: "1".into()
        }
    );
}
