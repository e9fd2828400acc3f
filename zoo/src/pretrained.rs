//! Pretrained weights, embedded in the binary so everything works offline.
//!
//! Each file is a relprop checkpoint written by `relprop train <model>` (see the README for
//! the exact commands and the accuracies they reach).

use crate::arch::{Architecture, Model};
use relprop_nn::io::{Checkpoint, IoError};
use relprop_nn::state::{expected_shapes, load_state};

static MLP: &[u8] = include_bytes!("../weights/mlp.ckpt");
static LENET5: &[u8] = include_bytes!("../weights/lenet5.ckpt");
static VGG_SMALL: &[u8] = include_bytes!("../weights/vgg_small.ckpt");
static VGG_SMALL_BN: &[u8] = include_bytes!("../weights/vgg_small_bn.ckpt");
static RESNET_SMALL: &[u8] = include_bytes!("../weights/resnet_small.ckpt");
static MULTIDIGIT: &[u8] = include_bytes!("../weights/multidigit.ckpt");

/// The embedded checkpoint bytes of `arch` (empty for the ImageNet models, whose weights
/// are fetched: see [`crate::imagenet`]).
pub fn bytes(arch: Architecture) -> &'static [u8] {
    match arch {
        Architecture::Mlp => MLP,
        Architecture::Lenet5 => LENET5,
        Architecture::VggSmall => VGG_SMALL,
        Architecture::VggSmallBn => VGG_SMALL_BN,
        Architecture::ResnetSmall => RESNET_SMALL,
        Architecture::Multidigit => MULTIDIGIT,
        Architecture::EfficientnetLite0 => &[],
    }
}

/// The embedded checkpoint of `arch`, decoded and validated against the architecture.
pub fn checkpoint(arch: Architecture) -> Result<Checkpoint, IoError> {
    if !arch.is_embedded() {
        return Err(IoError::Unsupported {
            what: arch.name().into(),
            reason: "its weights are not embedded; fetch them (see `relprop fetch`)".into(),
        });
    }
    let ckpt = Checkpoint::from_bytes(bytes(arch))?;
    ckpt.validate(arch.name(), &expected_shapes(&arch.build(0)))?;
    Ok(ckpt)
}

/// The pretrained model of `arch`.
pub fn load(arch: Architecture) -> Result<Model, IoError> {
    let ckpt = checkpoint(arch)?;
    let mut model = arch.build(0);
    load_state(&mut model, &ckpt.params, false)?;
    Ok(model)
}
