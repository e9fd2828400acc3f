//! Round trips through the writer and the importer, checked against the native forward
//! pass, and the errors for what cannot be written.

use super::*;
use crate::reader::{decode_model, Dim};
use crate::OnnxNet;
use relprop_core::{Conv2dSpec, NormStats, Pool2dSpec, Result, Tensor};
use relprop_nn::Param;

/// Every op the writer knows, in one model: a grouped, dilated, strided, unevenly padded
/// conv; LeakyReLU; a BatchNorm that follows no conv; zero padding; both poolings with
/// padding; sigmoid/tanh branches joined by a concat; clamps with one and two bounds;
/// scalar add and multiply; a transpose; a mean over the plane; a linear layer.
struct Everything {
    conv_w: Param,
    conv_b: Param,
    bn_w: Param,
    bn_b: Param,
    mean: Tensor,
    var: Tensor,
    fc_w: Param,
    fc_b: Param,
}

impl Everything {
    fn new() -> Self {
        let r = |shape: &[usize], seed| Tensor::rand_normal(shape, 0.0, 0.5, seed);
        Everything {
            conv_w: Param::new("body.conv.weight", r(&[4, 1, 3, 3], 1)),
            conv_b: Param::new("body.conv.bias", r(&[4], 2)),
            bn_w: Param::new("body.bn.weight", r(&[4], 3)),
            bn_b: Param::new("body.bn.bias", r(&[4], 4)),
            mean: r(&[4], 5),
            var: Tensor::rand_uniform(&[4], 0.5, 2.0, 6),
            fc_w: Param::new("head.fc.weight", r(&[3, 8], 7)),
            fc_b: Param::new("head.fc.bias", r(&[3], 8)),
        }
    }
}

impl Module for Everything {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let spec = Conv2dSpec::new(1, 0)
            .with_stride([2, 1])
            .with_pads([1, 0], [2, 1])
            .with_dilation([1, 2])
            .with_groups(2);
        let (w, b) = (self.conv_w.record(tape), self.conv_b.record(tape));
        let c = tape.conv2d(x, w, Some(b), spec)?;
        tape.set_label(c, "body.conv")?;
        let a = tape.leaky_relu(c, 0.1)?;
        let (g, beta) = (self.bn_w.record(tape), self.bn_b.record(tape));
        let stats = NormStats {
            mean: self.mean.clone(),
            var: self.var.clone(),
            eps: 1e-3,
            from_batch: false,
        };
        let n = tape.batch_norm2d(a, g, beta, stats)?;
        tape.set_label(n, "body.bn")?;
        let p = tape.pad(n, &[0, 0, 1, 0], &[0, 0, 0, 2])?;
        let avg = tape.avg_pool2d(p, Pool2dSpec::new(3, 1, 1))?;
        let mx = tape.max_pool2d(avg, Pool2dSpec::new(2, 1, 1))?;
        let s = tape.record(Op::Sigmoid(mx))?;
        let t = tape.record(Op::Tanh(mx))?;
        let cat = tape.concat(&[s, t], 1)?;
        let cl = tape.clamp(cat, -0.5, 0.7)?;
        let up = tape.clamp(cl, f32::NEG_INFINITY, 0.6)?;
        let sh = tape.record(Op::AddScalar(up, 0.25))?;
        let sc = tape.record(Op::MulScalar(sh, 1.5))?;
        let tr = tape.record(Op::Permute {
            x: sc,
            perm: vec![0, 1, 3, 2],
        })?;
        let m = tape.mean(tr, &[2, 3], false)?;
        let (fw, fb) = (self.fc_w.record(tape), self.fc_b.record(tape));
        let y = tape.linear(m, fw, Some(fb))?;
        tape.set_label(y, "head.fc")?;
        Ok(y)
    }
    fn describe(&self) -> String {
        "everything".into()
    }
}

/// `max |a - b| / max |b|`.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .data()
        .iter()
        .zip(b.data())
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(1e-30)
}

fn run(model: &dyn Module, x: &Tensor) -> Tensor {
    let mut tape = Tape::for_inference();
    let id = tape.leaf(x.clone());
    let y = model.forward(&mut tape, id, Mode::Eval).unwrap();
    tape.value(y).unwrap().clone()
}

#[test]
fn every_op_round_trips_to_the_same_logits_at_another_batch_size() {
    let model = Everything::new();
    let bytes = export_module(&model, &[2, 7, 6], "everything").unwrap();
    let decoded = decode_model(&bytes, None).unwrap();
    assert_eq!(decoded.opset, OPSET);
    assert!(decoded.producer.starts_with("relprop"));
    let input = &decoded.graph.inputs[0];
    assert_eq!(input.name, "input");
    assert!(matches!(input.dims[0], Dim::Dynamic(_)));
    assert_eq!(
        &input.dims[1..],
        &[Dim::Fixed(2), Dim::Fixed(7), Dim::Fixed(6)]
    );
    assert_eq!(decoded.graph.outputs[0].name, "logits");
    assert_eq!(decoded.graph.outputs[0].dims[1], Dim::Fixed(3));
    let names: Vec<&str> = decoded
        .graph
        .initializers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for p in [
        "body.conv.weight",
        "body.bn.running_mean",
        "body.bn.running_var",
        "head.fc.bias",
    ] {
        assert!(names.contains(&p), "{p} missing from {names:?}");
    }
    let net = OnnxNet::from_model(&decoded, "everything").unwrap();
    // Batch 3: the file was recorded at another batch size.
    let x = Tensor::rand_normal(&[3, 2, 7, 6], 0.0, 1.0, 11);
    let (ours, theirs) = (run(&net, &x), run(&model, &x));
    let d = rel_diff(&ours, &theirs);
    assert!(d <= 1e-5, "logits differ by {d:e}");
    let labels: Vec<String> = net.layers().into_iter().map(|(l, _)| l).collect();
    assert!(labels.contains(&"body.conv".to_string()));
    assert!(labels.contains(&"body.bn".to_string()));
    assert!(labels.contains(&"head.fc".to_string()));
}

/// A model recording one op the writer refuses, on a `[n, 4]` input.
struct Refused(fn(&mut Tape, NodeId) -> Result<NodeId>);

impl Module for Refused {
    fn forward(&self, tape: &mut Tape, x: NodeId, _mode: Mode) -> Result<NodeId> {
        let y = (self.0)(tape, x)?;
        tape.set_label(y, "head.odd")?;
        Ok(y)
    }
    fn describe(&self) -> String {
        "refused".into()
    }
}

#[test]
fn an_op_without_onnx_form_is_named_in_the_error() {
    let model = Refused(|t, x| t.record(Op::Exp(x)));
    let e = export_module(&model, &[4], "m").unwrap_err();
    assert!(
        matches!(&e, ExportError::Unsupported { op, node } if op == "exp" && node.contains("head.odd")),
        "{e:?}"
    );
    assert!(e.to_string().contains("exp"), "{e}");
}

#[test]
fn reshapes_and_joins_across_the_batch_are_refused() {
    let merge = Refused(|t, x| {
        let n = t.value(x)?.shape()[0];
        t.reshape(x, &[1, n * 4])
    });
    let e = export_module(&merge, &[4], "m").unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
    let stack = Refused(|t, x| {
        let n = t.value(x)?.shape()[0];
        let both = t.concat(&[x, x], 0)?;
        t.reshape(both, &[n, 8])
    });
    let e = export_module(&stack, &[4], "m").unwrap_err();
    assert!(
        matches!(&e, ExportError::Invalid { node, .. } if node.starts_with("concat")),
        "{e:?}"
    );
    assert!(e.to_string().contains("batch"), "{e}");
}

#[test]
fn bad_input_shapes_are_errors_not_panics() {
    let model = Refused(|t, x| t.relu(x));
    for shape in [&[][..], &[0, 3], &[1 << 40, 1 << 40]] {
        let e = export_module(&model, shape, "m").unwrap_err();
        assert!(matches!(e, ExportError::Record(_)), "{shape:?}: {e:?}");
    }
    // The model itself rejects the shape: the message names the shape tried.
    let linear = Refused(|t, x| {
        let w = t.constant(Tensor::zeros(&[2, 4]));
        t.linear(x, w, None)
    });
    let e = export_module(&linear, &[5], "m").unwrap_err();
    assert!(e.to_string().contains("[N, 5]"), "{e}");
}

#[test]
fn a_failed_write_leaves_no_file() {
    let dir = std::env::temp_dir().join(format!("relprop-onnx-writer-{}", std::process::id()));
    let path = dir.join("missing").join("m.onnx");
    let model = Refused(|t, x| t.relu(x));
    let e = write_model(&path, &model, &[4], "m").unwrap_err();
    assert!(matches!(e, ExportError::Write(_)), "{e:?}");
    assert!(!path.exists());
}
