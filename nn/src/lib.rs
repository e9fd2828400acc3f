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
    AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, MaxPool2d, Relu,
    Residual, Sequential,
};
pub use loss::{accuracy, cross_entropy, soft_cross_entropy};
pub use module::{Mode, Module, Param};
pub use optim::{cosine_lr, Adam, Gradients, Optimizer, Sgd};
pub use train::{
    evaluate, fit, gather_rows, predict, slice_rows, train_epoch, EpochStats, Labels, TrainConfig,
};
