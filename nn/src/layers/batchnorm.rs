//! `BatchNorm2d`: per-channel normalisation with learned scale and shift, plus running
//! statistics for evaluation, as `torch.nn.BatchNorm2d`.

use super::{labelled, line};
use crate::module::{Mode, Module, Param};
use relprop_core::{Error, NodeId, NormStats, Op, Result, Tape, Tensor};

/// Batch normalisation over `[N, C, H, W]`, one `batch_norm2d` node labelled with the
/// layer's name.
///
/// Training mode normalises with the batch's statistics (the node keeps them) and
/// [`Module::update_running_stats`] folds them into the running averages afterwards;
/// evaluation mode normalises with the running averages.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    name: String,
    /// Added to the variance before the square root (PyTorch: 1e-5).
    pub eps: f32,
    /// Weight of the new batch in the running averages (PyTorch: 0.1).
    pub momentum: f32,
    /// `{name}.weight`: scale `[c]`, trainable, initially ones.
    pub weight: Param,
    /// `{name}.bias`: shift `[c]`, trainable, initially zeros.
    pub bias: Param,
    /// `{name}.running_mean`: buffer `[c]`, initially zeros.
    pub running_mean: Param,
    /// `{name}.running_var`: buffer `[c]` (unbiased), initially ones.
    pub running_var: Param,
}

impl BatchNorm2d {
    /// A layer over `channels` channels with PyTorch's defaults (eps 1e-5, momentum 0.1).
    pub fn new(name: impl Into<String>, channels: usize) -> Self {
        let name = name.into();
        BatchNorm2d {
            eps: 1e-5,
            momentum: 0.1,
            weight: Param::new(format!("{name}.weight"), Tensor::ones(&[channels])),
            bias: Param::new(format!("{name}.bias"), Tensor::zeros(&[channels])),
            running_mean: Param::buffer(format!("{name}.running_mean"), Tensor::zeros(&[channels])),
            running_var: Param::buffer(format!("{name}.running_var"), Tensor::ones(&[channels])),
            name,
        }
    }

    /// The layer's full name, which also labels its output node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.weight.value.numel()
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        let w = self.weight.record(tape);
        let b = self.bias.record(tape);
        let y = match mode {
            Mode::Train => {
                let shape = tape.value(x)?.shape();
                // Like PyTorch: one value per channel has no variance to normalise by.
                if shape.len() == 4 && shape[0] * shape[2] * shape[3] < 2 {
                    return Err(Error::shape(
                        "BatchNorm2d",
                        &[shape],
                        "training needs more than one value per channel",
                    ));
                }
                tape.batch_norm2d_train(x, w, b, self.eps)?
            }
            Mode::Eval => {
                let stats = NormStats {
                    mean: self.running_mean.value.clone(),
                    var: self.running_var.value.clone(),
                    eps: self.eps,
                    from_batch: false,
                };
                tape.batch_norm2d(x, w, b, stats)?
            }
        };
        labelled(tape, y, &self.name)
    }

    fn params(&self) -> Vec<&Param> {
        vec![
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
        ]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![
            &mut self.weight,
            &mut self.bias,
            &mut self.running_mean,
            &mut self.running_var,
        ]
    }

    /// Reads the batch statistics from the node labelled with this layer's name and
    /// updates `running = (1 - momentum) * running + momentum * batch`, with the batch
    /// variance made unbiased (`var * m / (m - 1)`, `m = N*H*W`) as PyTorch does. Does
    /// nothing when the tape holds no training-mode node of this layer.
    fn update_running_stats(&mut self, tape: &Tape) -> Result<()> {
        let Some(id) = tape.find(&self.name) else {
            return Ok(());
        };
        let Op::BatchNorm2d { x, stats, .. } = &tape.node(id)?.op else {
            return Err(Error::invalid(
                "BatchNorm2d",
                format!("the node labelled `{}` is not a batch_norm2d", self.name),
            ));
        };
        if !stats.from_batch {
            return Ok(());
        }
        let c = self.channels();
        let m = (tape.value(*x)?.numel() / c.max(1)) as f32;
        let correction = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
        let mom = self.momentum;
        let blend = |running: &Tensor, batch: &Tensor, scale: f32| -> Result<Tensor> {
            let data = running
                .data()
                .iter()
                .zip(batch.data())
                .map(|(&r, &b)| (1.0 - mom) * r + mom * b * scale)
                .collect();
            Tensor::from_vec(data, &[c])
        };
        if stats.mean.shape() != [c] {
            return Err(Error::shape(
                "BatchNorm2d",
                &[stats.mean.shape(), &[c]],
                "the recorded statistics do not match this layer's channels",
            ));
        }
        self.running_mean.value = blend(&self.running_mean.value, &stats.mean, 1.0)?;
        self.running_var.value = blend(&self.running_var.value, &stats.var, correction)?;
        Ok(())
    }

    fn describe(&self) -> String {
        line(
            Some(&self.name),
            &format!("batch_norm2d {} eps={}", self.channels(), self.eps),
        )
    }
}
