//! Maps at intermediate layers and walks that start at a neuron: against `explain` (the
//! logit layer's neuron k is class k), against finite differences, and through the CLI.

mod common;

use relprop::core::Tensor;
use relprop::explain::{explain, explain_layers, record, Composite, Method, Neuron, Seed, Targets};
use relprop::nn::io::{read_tensor, write_npy_f32};
use relprop::zoo::{digits, pretrained, Architecture};

fn digits_batch(n: usize) -> Tensor {
    let data = digits::load().unwrap();
    let idx = &data.test_indices()[..n];
    let mut v = Vec::new();
    for &i in idx {
        v.extend(data.image_f32(i));
    }
    Tensor::from_vec(v, &[n, 1, 28, 28]).unwrap()
}

fn lrp() -> Method {
    Method::Lrp {
        composite: Composite::epsilon_plus(1e-6),
        seed: Seed::OneHot,
    }
}

#[test]
fn the_input_map_is_explains_and_the_logit_neuron_is_its_class() {
    let model = pretrained::load(Architecture::Lenet5).unwrap();
    let x = digits_batch(3);
    for method in [Method::Gradient, Method::GradientXInput, lrp()] {
        let full = explain(&model, &x, &Targets::Class(4), &method).unwrap();
        let maps = explain_layers(&model, &x, &Targets::Class(4), &method, None).unwrap();
        assert!(maps.input.max_rel_diff(&full.relevance).unwrap() < 1e-6);
        let neuron = Neuron {
            label: "classifier.fc3".into(),
            index: 4,
        };
        let from_unit =
            explain_layers(&model, &x, &Targets::Argmax, &method, Some(&neuron)).unwrap();
        assert!(from_unit.input.max_rel_diff(&full.relevance).unwrap() < 1e-6);
        assert!(from_unit.targets.is_empty());
    }
}

#[test]
fn maps_at_layers_carry_the_audited_sums() {
    let model = pretrained::load(Architecture::Lenet5).unwrap();
    let x = digits_batch(2);
    let maps = explain_layers(&model, &x, &Targets::Argmax, &lrp(), None).unwrap();
    let conv2 = maps.at("features.conv2").expect("conv2 map");
    assert_eq!(conv2.shape(), &[2, 16, 10, 10]);
    let row = maps
        .audit
        .rows
        .iter()
        .find(|r| r.label == "features.conv2")
        .unwrap();
    let per = conv2.numel() / 2;
    for i in 0..2 {
        let s: f64 = conv2.data()[i * per..(i + 1) * per]
            .iter()
            .map(|&v| v as f64)
            .sum();
        assert!(
            (s - row.sums[i]).abs() <= 1e-4 * s.abs().max(1.0),
            "{s} vs {}",
            row.sums[i]
        );
    }
    assert!(maps.at("nosuch").is_none());
}

/// The gradient from a conv channel against a central difference of that channel's sum
/// (on noise: a digit's blank background makes ties in max pooling, where the derivative
/// is not defined).
#[test]
fn the_gradient_of_a_channel_matches_finite_differences() {
    let model = pretrained::load(Architecture::Lenet5).unwrap();
    let x = Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 3);
    let neuron = Neuron {
        label: "features.conv2".into(),
        index: 5,
    };
    let g = explain_layers(
        &model,
        &x,
        &Targets::Argmax,
        &Method::Gradient,
        Some(&neuron),
    )
    .unwrap()
    .input;
    let channel_sum = |x: &Tensor| -> f64 {
        let rec = record(&model, x).unwrap();
        let id = rec.tape.find("features.conv2").unwrap();
        let v = rec.tape.value(id).unwrap();
        v.data()[5 * 100..6 * 100].iter().map(|&e| e as f64).sum()
    };
    let dir = Tensor::rand_uniform(&[1, 1, 28, 28], -1.0, 1.0, 7);
    let h = 1e-3f32;
    let plus = x.add(&dir.mul_scalar(h)).unwrap();
    let minus = x.sub(&dir.mul_scalar(h)).unwrap();
    let fd = (channel_sum(&plus) - channel_sum(&minus)) / (2.0 * h as f64);
    let analytic: f64 = g
        .data()
        .iter()
        .zip(dir.data())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum();
    assert!(
        (fd - analytic).abs() <= 2e-2 * fd.abs().max(1.0),
        "fd {fd} vs {analytic}"
    );
    assert!(g.abs_sum() > 0.0);
}

#[test]
fn sglrp_and_clrp2_from_a_neuron_are_refused() {
    let model = pretrained::load(Architecture::Lenet5).unwrap();
    let x = digits_batch(1);
    let neuron = Neuron {
        label: "features.conv1".into(),
        index: 0,
    };
    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    assert!(explain_layers(
        &model,
        &x,
        &Targets::Argmax,
        &Method::Sglrp { composite: bdt() },
        Some(&neuron)
    )
    .is_err());
    assert!(explain_layers(
        &model,
        &x,
        &Targets::Argmax,
        &Method::Clrp2 { composite: bdt() },
        None
    )
    .is_err());
    let missing = Neuron {
        label: "nosuch".into(),
        index: 0,
    };
    assert!(explain_layers(&model, &x, &Targets::Argmax, &lrp(), Some(&missing)).is_err());
    let too_far = Neuron {
        label: "features.conv1".into(),
        index: 6,
    };
    assert!(explain_layers(&model, &x, &Targets::Argmax, &lrp(), Some(&too_far)).is_err());
}

#[test]
fn the_cli_writes_layer_maps_and_explains_neurons() {
    let tmp = common::scratch("layers");
    let x = tmp.join("x.npy");
    write_npy_f32(&x, &digits_batch(2)).unwrap();
    let run = |extra: &[&str], out: &std::path::Path| {
        let mut args = vec![
            "explain",
            "--model",
            "lenet5",
            "--input",
            x.to_str().unwrap(),
            "--method",
            "lrp",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        common::relprop(&args)
    };
    let layer = tmp.join("layer.npy");
    let o = run(&["--layer", "features.conv2"], &layer);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_tensor(&layer).unwrap().shape(), &[2, 16, 10, 10]);
    let (by_neuron, by_target) = (tmp.join("neuron.npy"), tmp.join("target.npy"));
    assert!(run(&["--neuron", "classifier.fc3:7"], &by_neuron)
        .status
        .success());
    assert!(run(&["--target", "7"], &by_target).status.success());
    let (a, b) = (
        read_tensor(&by_neuron).unwrap(),
        read_tensor(&by_target).unwrap(),
    );
    assert!(a.max_rel_diff(&b).unwrap() < 1e-6);
    for bad in [
        vec!["--neuron", "nosuch:1"],
        vec!["--layer", "nosuch"],
        vec!["--neuron", "features.conv1"],
        vec!["--layer", "features.conv2", "--heatmap", "h.png"],
    ] {
        let out = tmp.join("bad.npy");
        let o = run(&bad, &out);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!out.exists(), "{bad:?} left an output");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_cli_explains_large_batches_at_a_layer_in_chunks_with_the_same_maps() {
    // 70 samples: more than one 64-sample chunk.
    let tmp = common::scratch("layers-chunks");
    let (x, out) = (tmp.join("x.npy"), tmp.join("layer.npy"));
    let batch = digits_batch(70);
    write_npy_f32(&x, &batch).unwrap();
    let o = common::relprop(&[
        "explain",
        "--model",
        "lenet5",
        "--input",
        x.to_str().unwrap(),
        "--method",
        "lrp",
        "--layer",
        "features.conv2",
        "--out",
        out.to_str().unwrap(),
        "--audit",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = pretrained::load(Architecture::Lenet5).unwrap();
    let whole = explain_layers(&model, &batch, &Targets::Argmax, &lrp(), None).unwrap();
    let reference = whole.at("features.conv2").unwrap();
    let written = read_tensor(&out).unwrap();
    assert_eq!(written.shape(), reference.shape());
    assert!(written.max_rel_diff(reference).unwrap() < 1e-5);
    // The audit covers all 70 samples, not the last chunk only.
    assert!(stdout.contains("means over 70 samples"), "{stdout}");
    let _ = std::fs::remove_dir_all(&tmp);
}
