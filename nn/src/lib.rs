//! relprop-nn: layers, losses, optimizers, checkpoints and array I/O.
pub mod init;
pub mod io;
pub mod layers;
pub mod loss;
pub mod module;
pub mod optim;
pub mod progress;
pub mod state;
pub mod train;

pub use layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Clamp, Concat, Conv2d, Dropout, Flatten,
    GlobalAvgPool, LeakyRelu, Linear, MaxPool2d, Normalize, Relu, Residual, Sequential, Sigmoid,
    Tanh,
};
pub use loss::{accuracy, cross_entropy, soft_cross_entropy};
pub use module::{Mode, Module, Param};
pub use optim::{cosine_lr, Adam, Gradients, Optimizer, Sgd};
pub use train::{
    evaluate, fit, gather_rows, predict, slice_rows, train_epoch, EpochStats, Labels, TrainConfig,
};
