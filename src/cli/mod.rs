//! The subcommands of the `relprop` tool, one file each.

#[macro_use]
pub mod out;

pub mod bench;
pub mod demo;
pub mod demo_imagenet;
pub mod error;
pub mod eval;
pub mod eval_photos;
pub mod explain;
pub mod explain_layers;
pub mod fetch;
pub mod graph;
pub mod info;
pub mod info_graph;
pub mod input;
pub mod limits;
pub mod models;
pub mod pool;
pub mod predict;
pub mod serve;
pub mod train;
pub mod verify;
