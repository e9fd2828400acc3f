//! The zoo's architectures, with PyTorch `state_dict` names (the README's "The zoo").
//!
//! `mlp`, `lenet5` and `vgg_small` are fixed by the design notes (and the reference
//! fixtures); `vgg_small_bn`, `resnet_small` and `multidigit` are the zoo's own designs,
//! documented on their constructors. `efficientnet_lite0` is the published ImageNet model
//! (see [`crate::efficientnet`]).

use crate::efficientnet::{self, BatchNorms};
use relprop_core::{Conv2dSpec, NodeId, Result, Rng, Tape, Tensor};
use relprop_nn::io::IoError;
use relprop_nn::state::load_state;
use relprop_nn::{
    BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Mode, Module, Param, Relu, Residual,
    Sequential,
};
use std::fmt;

/// A zoo architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// 784-256-128-10 fully connected ReLU net.
    Mlp,
    /// LeNet-5: two 5x5 convs with max pooling, three linear layers.
    Lenet5,
    /// Four 3x3 convs (32-32-64-64) with two max pools, two linear layers.
    VggSmall,
    /// `vgg_small` with BatchNorm after every conv and a 64-unit hidden layer.
    VggSmallBn,
    /// A stem conv, two residual blocks and a linear head.
    ResnetSmall,
    /// A CNN for 56x56 two-digit composites (five convs, three pools).
    Multidigit,
    /// EfficientNet-Lite0 for 1000 ImageNet classes on RGB photos (weights fetched, not
    /// embedded; see [`crate::imagenet`]).
    EfficientnetLite0,
}

/// The digit models, in documentation order: trained in the repository, weights embedded.
pub const ALL: [Architecture; 6] = [
    Architecture::Mlp,
    Architecture::Lenet5,
    Architecture::VggSmall,
    Architecture::VggSmallBn,
    Architecture::ResnetSmall,
    Architecture::Multidigit,
];

/// The ImageNet models: published weights, fetched once into a cache.
pub const IMAGENET: [Architecture; 1] = [Architecture::EfficientnetLite0];

impl Architecture {
    /// Every architecture: the digit models, then the ImageNet ones.
    pub fn every() -> impl Iterator<Item = Architecture> {
        ALL.into_iter().chain(IMAGENET)
    }

    /// Whether the weights are embedded in the binary (the digit models) rather than
    /// fetched (the ImageNet ones).
    pub fn is_embedded(self) -> bool {
        !IMAGENET.contains(&self)
    }

    /// The command-line name (`vgg_small`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mlp => "mlp",
            Architecture::Lenet5 => "lenet5",
            Architecture::VggSmall => "vgg_small",
            Architecture::VggSmallBn => "vgg_small_bn",
            Architecture::ResnetSmall => "resnet_small",
            Architecture::Multidigit => "multidigit",
            Architecture::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// Looks an architecture up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::every().find(|a| a.name() == name)
    }

    /// One sample's input shape `[C, H, W]`.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            Architecture::Multidigit => [1, 56, 56],
            Architecture::EfficientnetLite0 => [3, 224, 224],
            _ => [1, 28, 28],
        }
    }

    /// Number of output classes.
    pub fn classes(self) -> usize {
        match self {
            Architecture::EfficientnetLite0 => crate::efficientnet::CLASSES,
            _ => 10,
        }
    }

    /// A freshly initialised model (PyTorch default initialisation) from `seed`;
    /// `efficientnet_lite0` in its folded variant (convolutions with biases, no BatchNorms),
    /// the one its loaded weights come in.
    pub fn build(self, seed: u64) -> Model {
        let mut rng = Rng::new(seed);
        let r = &mut rng;
        let net = match self {
            Architecture::Mlp => Sequential::new("mlp")
                .with(Flatten::new())
                .with(linear("classifier.fc1", 784, 256, r))
                .with(Relu::named("classifier.relu1"))
                .with(linear("classifier.fc2", 256, 128, r))
                .with(Relu::named("classifier.relu2"))
                .with(linear("classifier.fc3", 128, 10, r)),
            Architecture::Lenet5 => Sequential::new("lenet5")
                .with(conv("features.conv1", 1, 6, 5, 2, r))
                .with(Relu::named("features.relu1"))
                .with(MaxPool2d::new("features.pool1", 2, 2, 0))
                .with(conv("features.conv2", 6, 16, 5, 0, r))
                .with(Relu::named("features.relu2"))
                .with(MaxPool2d::new("features.pool2", 2, 2, 0))
                .with(Flatten::new())
                .with(linear("classifier.fc1", 400, 120, r))
                .with(Relu::named("classifier.relu1"))
                .with(linear("classifier.fc2", 120, 84, r))
                .with(Relu::named("classifier.relu2"))
                .with(linear("classifier.fc3", 84, 10, r)),
            Architecture::VggSmall => vgg(false, 256, r),
            Architecture::VggSmallBn => vgg(true, 64, r),
            Architecture::ResnetSmall => resnet(r),
            Architecture::Multidigit => multidigit(r),
            Architecture::EfficientnetLite0 => efficientnet::build(BatchNorms::Folded, r).net,
        };
        Model { arch: self, net }
    }

    /// Every parameter and buffer name a state dict of this architecture may hold; for
    /// `efficientnet_lite0`, the names of both layouts (with BatchNorms and folded).
    pub fn state_names(self) -> Vec<String> {
        let mut names: Vec<String> = self
            .build(0)
            .params()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        if self == Architecture::EfficientnetLite0 {
            let separate = efficientnet::build(BatchNorms::Separate, &mut Rng::new(0)).net;
            for p in separate.params() {
                if !names.contains(&p.name) {
                    names.push(p.name.clone());
                }
            }
        }
        names
    }

    /// This architecture with the weights of `state`, matched by `state_dict` name and
    /// checked as [`load_state`] checks them (entries the model lacks are errors unless
    /// `ignore_extra`). `efficientnet_lite0` takes the published layout (BatchNorms), which
    /// it folds, or an already folded one (see [`efficientnet::fold`]).
    pub fn with_state(
        self,
        state: &[(String, Tensor)],
        ignore_extra: bool,
    ) -> std::result::Result<Model, IoError> {
        if self == Architecture::EfficientnetLite0 {
            let net = efficientnet::fold::from_state(state, ignore_extra)?;
            return Ok(Model { arch: self, net });
        }
        let mut model = self.build(0);
        load_state(&mut model, state, ignore_extra)?;
        Ok(model)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn linear(name: &str, i: usize, o: usize, r: &mut Rng) -> Linear {
    Linear::new(name, i, o, true, r)
}

fn conv(name: &str, i: usize, o: usize, k: usize, pad: usize, r: &mut Rng) -> Conv2d {
    Conv2d::new(name, i, o, [k, k], Conv2dSpec::new(1, pad), true, r)
}

/// `vgg_small` (and its BatchNorm twin): conv 32, conv 32, pool, conv 64, conv 64, pool,
/// then `classifier.fc1` 3136->hidden, ReLU, `classifier.fc2` hidden->10.
fn vgg(batch_norm: bool, hidden: usize, r: &mut Rng) -> Sequential {
    let name = if batch_norm {
        "vgg_small_bn"
    } else {
        "vgg_small"
    };
    let mut net = Sequential::new(name);
    let widths = [(1, 32), (32, 32), (32, 64), (64, 64)];
    for (i, &(cin, cout)) in widths.iter().enumerate() {
        let k = i + 1;
        net.push(conv(&format!("features.conv{k}"), cin, cout, 3, 1, r));
        if batch_norm {
            net.push(BatchNorm2d::new(format!("features.bn{k}"), cout));
        }
        net.push(Relu::named(format!("features.relu{k}")));
        if k % 2 == 0 {
            net.push(MaxPool2d::new(format!("features.pool{}", k / 2), 2, 2, 0));
        }
    }
    net.with(Flatten::new())
        .with(linear("classifier.fc1", 64 * 7 * 7, hidden, r))
        .with(Relu::named("classifier.relu1"))
        .with(linear("classifier.fc2", hidden, 10, r))
}

/// `resnet_small`: `features.conv1` 1->16 3x3, ReLU; `features.block1` (two 3x3 convs 16->16
/// around an identity shortcut), ReLU, max pool; `features.block2` (3x3 convs 16->32 and
/// 32->32, shortcut a 1x1 conv 16->32), ReLU, max pool; flatten 32x7x7; `classifier.fc1`
/// 1568->10. The residual sums are plain `add` nodes: LRP splits them with the Norm rule.
fn resnet(r: &mut Rng) -> Sequential {
    let block1 = Sequential::new("features.block1.body")
        .with(conv("features.block1.conv1", 16, 16, 3, 1, r))
        .with(Relu::named("features.block1.relu1"))
        .with(conv("features.block1.conv2", 16, 16, 3, 1, r));
    let block2 = Sequential::new("features.block2.body")
        .with(conv("features.block2.conv1", 16, 32, 3, 1, r))
        .with(Relu::named("features.block2.relu1"))
        .with(conv("features.block2.conv2", 32, 32, 3, 1, r));
    let shortcut2 = conv("features.block2.shortcut", 16, 32, 1, 0, r);
    Sequential::new("resnet_small")
        .with(conv("features.conv1", 1, 16, 3, 1, r))
        .with(Relu::named("features.relu1"))
        .with(Residual::new("features.block1", block1, None))
        .with(Relu::named("features.relu2"))
        .with(MaxPool2d::new("features.pool1", 2, 2, 0))
        .with(Residual::new(
            "features.block2",
            block2,
            Some(Box::new(shortcut2)),
        ))
        .with(Relu::named("features.relu3"))
        .with(MaxPool2d::new("features.pool2", 2, 2, 0))
        .with(Flatten::new())
        .with(linear("classifier.fc1", 32 * 7 * 7, 10, r))
}

/// `multidigit` for 1x56x56 composites: `features.conv1` 32 at 56x56, pool; `conv2` 32 and
/// `conv3` 64 at 28x28, pool; `conv4` 64 and `conv5` 128 at 14x14, pool (all 3x3, padding 1);
/// flatten 128x7x7; `classifier.fc1` 6272->40, ReLU, `classifier.fc2` 40->10. Pooling right
/// after the first conv halves the cost of training against pooling after the second.
fn multidigit(r: &mut Rng) -> Sequential {
    Sequential::new("multidigit")
        .with(conv("features.conv1", 1, 32, 3, 1, r))
        .with(Relu::named("features.relu1"))
        .with(MaxPool2d::new("features.pool1", 2, 2, 0))
        .with(conv("features.conv2", 32, 32, 3, 1, r))
        .with(Relu::named("features.relu2"))
        .with(conv("features.conv3", 32, 64, 3, 1, r))
        .with(Relu::named("features.relu3"))
        .with(MaxPool2d::new("features.pool2", 2, 2, 0))
        .with(conv("features.conv4", 64, 64, 3, 1, r))
        .with(Relu::named("features.relu4"))
        .with(conv("features.conv5", 64, 128, 3, 1, r))
        .with(Relu::named("features.relu5"))
        .with(MaxPool2d::new("features.pool3", 2, 2, 0))
        .with(Flatten::new())
        .with(linear("classifier.fc1", 128 * 7 * 7, 40, r))
        .with(Relu::named("classifier.relu1"))
        .with(linear("classifier.fc2", 40, 10, r))
}

/// A zoo model: an architecture and its network.
pub struct Model {
    /// Which architecture this is.
    pub arch: Architecture,
    /// The layers.
    pub net: Sequential,
}

impl Model {
    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.net
            .params()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.value.numel())
            .sum()
    }
}

impl Module for Model {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        self.net.forward(tape, x, mode)
    }
    fn params(&self) -> Vec<&Param> {
        self.net.params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.net.params_mut()
    }
    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        self.net.update_running_stats(tape)
    }
    fn describe(&self) -> String {
        self.net.describe()
    }
}
