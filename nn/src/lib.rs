//! relprop-nn: layers, losses, optimizers, checkpoints and array I/O.
