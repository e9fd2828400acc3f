//! relprop's own checkpoint format: weights plus the architecture name and training
//! metadata, with a checksum.
//!
//! Layout, all little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `RELPROP\0` |
//! | 4 | format version, `u32` (currently 1) |
//! | n | bincode 2 (standard config: varint lengths) encoding of the stored struct |
//! | 4 | CRC-32 (IEEE) of every byte before it, `u32` |
//!
//! The stored struct is `{ architecture: String, params: Vec<{ name: String, shape:
//! Vec<u64>, data: Vec<f32> }>, meta: TrainingMeta }`.
//!
//! bincode is unmaintained, so every use of it stays in this file: replacing it means
//! rewriting `encode_body` and `decode_body` only.

use super::crc::crc32;
use super::{checked_numel, declared_bytes, read_bytes_checked, write_atomic, IoError};
use relprop_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RELPROP\0";
const VERSION: u32 = 1;
/// Magic plus version.
const PREFIX: usize = 12;
/// The CRC-32 at the end.
const TRAILER: usize = 4;

/// How a model was trained: recorded in a checkpoint so results can be traced back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingMeta {
    /// The training data (data set name, split, preprocessing).
    pub data: String,
    /// Number of training epochs completed.
    pub epochs: u32,
    /// Seed of the run (initialization, shuffling).
    pub seed: u64,
    /// Accuracy on held-out data, when it was measured.
    pub held_out_accuracy: Option<f32>,
    /// Free-form notes.
    pub notes: String,
}

/// A model's parameters with its architecture name and training metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// The architecture the parameters belong to (e.g. `"lenet5"`).
    pub architecture: String,
    /// Parameters by `state_dict`-style name, in the model's order.
    pub params: Vec<(String, Tensor)>,
    /// How the parameters were obtained.
    pub meta: TrainingMeta,
}

/// Serialization view borrowing from a [`Checkpoint`], so saving copies no weights.
#[derive(Serialize)]
struct StoredRef<'a> {
    architecture: &'a str,
    params: Vec<StoredParamRef<'a>>,
    meta: &'a TrainingMeta,
}

#[derive(Serialize)]
struct StoredParamRef<'a> {
    name: &'a str,
    shape: Vec<u64>,
    data: &'a [f32],
}

/// The owned mirror of [`StoredRef`]; serde encodes both identically.
#[derive(Deserialize)]
struct Stored {
    architecture: String,
    params: Vec<StoredParam>,
    meta: TrainingMeta,
}

#[derive(Deserialize)]
struct StoredParam {
    name: String,
    shape: Vec<u64>,
    data: Vec<f32>,
}

impl Checkpoint {
    /// The parameter called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Encodes the checkpoint. Refuses duplicate names ([`IoError::Malformed`]) and
    /// NaN or infinite weights ([`IoError::NonFinite`]): either would make a file that
    /// [`Checkpoint::from_bytes`] rejects, so the problem is reported at save time.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IoError> {
        check_unique(self.params.iter().map(|(n, _)| n.as_str()))?;
        let mut params = Vec::with_capacity(self.params.len());
        for (name, t) in &self.params {
            if !t.data().iter().all(|v| v.is_finite()) {
                return Err(IoError::NonFinite { name: name.clone() });
            }
            params.push(StoredParamRef {
                name,
                shape: t.shape().iter().map(|&d| d as u64).collect(),
                data: t.data(),
            });
        }
        let stored = StoredRef {
            architecture: &self.architecture,
            params,
            meta: &self.meta,
        };
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&encode_body(&stored)?);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decodes and checks a checkpoint: magic, version, checksum, then every parameter's
    /// shape against its data length and every value for finiteness.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, IoError> {
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(IoError::BadMagic {
                what: "checkpoint".into(),
            });
        }
        if bytes.len() < PREFIX {
            return Err(IoError::truncated(
                "checkpoint",
                PREFIX + TRAILER,
                bytes.len(),
            ));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            return Err(IoError::UnsupportedVersion {
                what: "checkpoint".into(),
                found: version.to_string(),
                supported: VERSION.to_string(),
            });
        }
        if bytes.len() < PREFIX + TRAILER {
            return Err(IoError::truncated(
                "checkpoint",
                PREFIX + TRAILER,
                bytes.len(),
            ));
        }
        // Checksum first: a damaged file is refused before any of it is interpreted.
        let (covered, trailer) = bytes.split_at(bytes.len() - TRAILER);
        let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if crc32(covered) != stored_crc {
            return Err(IoError::malformed("checkpoint", "checksum mismatch"));
        }

        let stored = decode_body(&covered[PREFIX..])?;
        check_unique(stored.params.iter().map(|p| p.name.as_str()))?;
        let mut params = Vec::with_capacity(stored.params.len());
        for p in stored.params {
            let shape = p
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<usize>, _>>()
                .map_err(|_| IoError::malformed("checkpoint", "a dimension exceeds usize"))?;
            let shape_s = super::shape_text(&shape);
            let Some(numel) = checked_numel(&shape) else {
                return Err(IoError::TooLarge {
                    what: format!("checkpoint parameter {} of shape {shape_s}", p.name),
                    declared: declared_bytes(&shape, 4),
                    limit: (p.data.len() * 4) as u128,
                });
            };
            if numel != p.data.len() {
                return Err(IoError::malformed(
                    "checkpoint",
                    format!(
                        "parameter {} has shape {shape_s} ({numel} values) but stores {}",
                        p.name,
                        p.data.len()
                    ),
                ));
            }
            if !p.data.iter().all(|v| v.is_finite()) {
                return Err(IoError::NonFinite { name: p.name });
            }
            let tensor = Tensor::from_vec(p.data, &shape)
                .map_err(|e| IoError::malformed("checkpoint", e.to_string()))?;
            params.push((p.name, tensor));
        }
        Ok(Checkpoint {
            architecture: stored.architecture,
            params,
            meta: stored.meta,
        })
    }

    /// Saves atomically: an interrupted save leaves any previous file at `path` intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads and checks a checkpoint file; see [`Checkpoint::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, IoError> {
        // The magic is checked before the rest is read.
        let bytes = read_bytes_checked(path.as_ref(), MAGIC.len(), |b| {
            if b[..] == MAGIC[..b.len()] {
                Ok(())
            } else {
                Err(IoError::BadMagic {
                    what: "checkpoint".into(),
                })
            }
        })?;
        Checkpoint::from_bytes(&bytes)
    }

    /// Checks that the checkpoint fits a model: same architecture name, and exactly the
    /// `expected` parameters (name and shape), in any order.
    ///
    /// Reports the first problem found, checking in this order: [`IoError::WrongArchitecture`],
    /// then per expected parameter [`IoError::MissingParameter`] or [`IoError::WrongShape`],
    /// then [`IoError::UnexpectedParameter`] for stored names the model lacks.
    pub fn validate(
        &self,
        architecture: &str,
        expected: &[(String, Vec<usize>)],
    ) -> Result<(), IoError> {
        if self.architecture != architecture {
            return Err(IoError::WrongArchitecture {
                expected: architecture.to_string(),
                found: self.architecture.clone(),
            });
        }
        crate::state::check_state(expected, &self.params, false)
    }
}

/// Two parameters with one name would make loading ambiguous.
fn check_unique<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), IoError> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(IoError::malformed(
                "checkpoint",
                format!("parameter {name} appears twice"),
            ));
        }
    }
    Ok(())
}

fn encode_body(stored: &StoredRef<'_>) -> Result<Vec<u8>, IoError> {
    bincode::serde::encode_to_vec(stored, bincode::config::standard())
        .map_err(|e| IoError::malformed("checkpoint export", e.to_string()))
}

/// The largest body the limit ladder in [`decode_body`] covers.
#[cfg(target_pointer_width = "64")]
const MAX_BODY: usize = 1 << 40;
#[cfg(not(target_pointer_width = "64"))]
const MAX_BODY: usize = 1 << 30;

/// Decodes the bincode body with a byte limit derived from its length.
///
/// bincode allocates a string's declared length before reading it, so without a limit
/// a corrupt length of 2^60 aborts the process. Its limit is a const generic, so the
/// body length is rounded up to the next power of four on a fixed ladder: the limit is
/// at most 4x the actual size, and a valid body (whose strings can total at most its
/// length) always fits under it.
fn decode_body(body: &[u8]) -> Result<Stored, IoError> {
    macro_rules! ladder {
        ($($bits:literal)*) => {$(
            if body.len() <= 1usize << $bits {
                return decode_limited::<{ 1usize << $bits }>(body);
            }
        )*};
    }
    ladder!(12 14 16 18 20 22 24 26 28 30);
    #[cfg(target_pointer_width = "64")]
    ladder!(32 34 36 38 40);
    Err(IoError::TooLarge {
        what: "checkpoint".into(),
        declared: body.len() as u128,
        limit: MAX_BODY as u128,
    })
}

fn decode_limited<const LIMIT: usize>(body: &[u8]) -> Result<Stored, IoError> {
    use bincode::error::DecodeError;
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (stored, used): (Stored, usize) =
        bincode::serde::decode_from_slice(body, config).map_err(|e| {
            let reason = match e {
                DecodeError::LimitExceeded => {
                    "a length field declares more data than the file holds".to_string()
                }
                DecodeError::UnexpectedEnd { .. } => "the encoded data ends early".to_string(),
                DecodeError::Utf8 { .. } => "a name is not valid UTF-8".to_string(),
                other => other.to_string(),
            };
            IoError::malformed("checkpoint", reason)
        })?;
    if used != body.len() {
        return Err(IoError::malformed(
            "checkpoint",
            format!(
                "{} unexpected bytes after the encoded data",
                body.len() - used
            ),
        ));
    }
    Ok(stored)
}
