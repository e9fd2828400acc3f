//! Attributors on a LeNet-5 with random weights and on a linear model with known answers.

use relprop_core::{Error, Exact, NodeId, Result, Rng, Tape, Tensor};
use relprop_explain::attributors::{grad_cam, integrated_gradients, occlusion, smoothgrad};
use relprop_explain::{explain, record, Method, Targets};
use relprop_nn::{Linear, Mode, Module};
use relprop_zoo::{Architecture, Model};

fn lenet() -> Model {
    Architecture::Lenet5.build(1)
}

fn input() -> Tensor {
    Tensor::rand_uniform(&[2, 1, 28, 28], 0., 1., 7)
}

/// Targets that differ per sample, so a mix-up of rows would show.
const T: [usize; 2] = [3, 8];

/// The plain gradient of each sample's target logit.
fn gradient(model: &dyn Module, x: &Tensor, t: &[usize]) -> Tensor {
    let rec = record(model, x).unwrap();
    let c = rec.logits().shape()[1];
    let mut seed = vec![0.0; t.len() * c];
    for (i, &k) in t.iter().enumerate() {
        seed[i * c + k] = 1.0;
    }
    let seed = Tensor::from_vec(seed, &[t.len(), c]).unwrap();
    rec.walk(&seed, &Exact).unwrap().0
}

fn target_logits(model: &dyn Module, x: &Tensor, t: &[usize]) -> Vec<f32> {
    let rec = record(model, x).unwrap();
    let c = rec.logits().shape()[1];
    t.iter()
        .enumerate()
        .map(|(i, &k)| rec.logits().data()[i * c + k])
        .collect()
}

fn per_sample_sums(r: &Tensor) -> Vec<f64> {
    let per = r.numel() / r.shape()[0];
    r.data()
        .chunks(per)
        .map(|c| c.iter().map(|&v| v as f64).sum())
        .collect()
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.shape(), b.shape());
    let d = a.max_rel_diff(b).unwrap();
    assert!(d <= tol, "relative difference {d} > {tol}");
}

#[test]
fn smoothgrad_without_noise_is_the_gradient() {
    let (m, x) = (lenet(), input());
    let sg = smoothgrad(&m, &x, &T, 5, 0.0, 42).unwrap();
    assert_close(&sg, &gradient(&m, &x, &T), 1e-5);
}

#[test]
fn smoothgrad_is_deterministic_for_a_seed() {
    let (m, x) = (lenet(), input());
    let a = smoothgrad(&m, &x, &T, 6, 0.2, 9).unwrap();
    let b = smoothgrad(&m, &x, &T, 6, 0.2, 9).unwrap();
    let c = smoothgrad(&m, &x, &T, 6, 0.2, 10).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.shape(), x.shape());
    assert!(a.all_finite());
    // Noise changes the answer: SmoothGrad is not the plain gradient.
    assert!(a.max_rel_diff(&gradient(&m, &x, &T)).unwrap() > 1e-3);
}

#[test]
fn smoothgrad_matches_a_per_sample_reference() {
    // Many copies (more than one chunk) of one sample must give the mean of the gradients
    // at the same noisy points, drawn in the documented order.
    let m = lenet();
    let x = Tensor::rand_uniform(&[1, 1, 28, 28], 0., 1., 3);
    let (samples, noise, seed) = (70, 0.1, 5);
    let sg = smoothgrad(&m, &x, &[4], samples, noise, seed).unwrap();
    let (lo, hi) = x
        .data()
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let sigma = noise * (hi - lo);
    let mut rng = Rng::new(seed);
    let mut acc = vec![0.0f64; x.numel()];
    for _ in 0..samples {
        let noisy: Vec<f32> = x.data().iter().map(|&v| v + sigma * rng.normal()).collect();
        let g = gradient(&m, &Tensor::from_vec(noisy, x.shape()).unwrap(), &[4]);
        for (a, &v) in acc.iter_mut().zip(g.data()) {
            *a += v as f64;
        }
    }
    let want: Vec<f32> = acc.iter().map(|a| (a / samples as f64) as f32).collect();
    assert_close(&sg, &Tensor::from_vec(want, x.shape()).unwrap(), 1e-4);
}

#[test]
fn integrated_gradients_is_complete() {
    let (m, x) = (lenet(), input());
    let ig = integrated_gradients(&m, &x, &T, 64, 0.0).unwrap();
    assert_eq!(ig.shape(), x.shape());
    let at_x = target_logits(&m, &x, &T);
    let at_b = target_logits(&m, &Tensor::zeros(x.shape()), &T);
    for (i, s) in per_sample_sums(&ig).into_iter().enumerate() {
        let want = (at_x[i] - at_b[i]) as f64;
        let err = (s - want).abs();
        assert!(
            err <= 0.03 * want.abs() + 1e-4,
            "sample {i}: IG sums to {s}, logit difference {want}"
        );
    }
}

#[test]
fn integrated_gradients_with_one_step_is_input_times_gradient() {
    let (m, x) = (lenet(), input());
    let ig = integrated_gradients(&m, &x, &T, 1, 0.0).unwrap();
    let want = x.mul(&gradient(&m, &x, &T)).unwrap();
    assert_close(&ig, &want, 1e-5);
    // A non-zero baseline: (x - b) * grad(x).
    let b = 0.25;
    let ig = integrated_gradients(&m, &x, &T, 1, b).unwrap();
    let want = x.add_scalar(-b).mul(&gradient(&m, &x, &T)).unwrap();
    assert_close(&ig, &want, 1e-4);
}

#[test]
fn grad_cam_is_non_negative_with_the_input_shape() {
    let (m, x) = (lenet(), input());
    for layer in [None, Some("features.conv1"), Some("features.conv2")] {
        let cam = grad_cam(&m, &x, &T, layer).unwrap();
        assert_eq!(cam.shape(), x.shape());
        assert!(cam.all_finite());
        assert!(cam.data().iter().all(|&v| v >= 0.0), "{layer:?}");
    }
    // The default is the last conv layer.
    assert_eq!(
        grad_cam(&m, &x, &T, None).unwrap(),
        grad_cam(&m, &x, &T, Some("features.conv2")).unwrap()
    );
}

#[test]
fn grad_cam_at_full_resolution_matches_the_definition() {
    // features.conv1 keeps 28x28 (padding 2), so no interpolation is involved.
    let (m, x) = (lenet(), input());
    let cam = grad_cam(&m, &x, &T, Some("features.conv1")).unwrap();
    let rec = record(&m, &x).unwrap();
    let node = rec.tape.find("features.conv1").unwrap();
    let mut seed = vec![0.0; 2 * 10];
    seed[T[0]] = 1.0;
    seed[10 + T[1]] = 1.0;
    let seed = Tensor::from_vec(seed, &[2, 10]).unwrap();
    let signals = rec.tape.backward(rec.output, &seed, &Exact).unwrap();
    let (a, g) = (rec.tape.value(node).unwrap(), signals.get(node).unwrap());
    let weights = g.mean(&[2, 3], true).unwrap();
    let want = a.mul(&weights).unwrap().sum(&[1], true).unwrap().relu();
    assert_close(&cam, &want, 1e-5);
    assert!(cam.max_abs() > 0.0);
}

#[test]
fn grad_cam_names_a_missing_layer() {
    let (m, x) = (lenet(), input());
    let err = grad_cam(&m, &x, &T, Some("features.conv9")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("features.conv9"), "{msg}");
    assert!(
        msg.contains("features.conv2"),
        "lists the conv layers: {msg}"
    );
    // A flat activation is not a map.
    let msg = grad_cam(&m, &x, &T, Some("classifier.fc1"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("classifier.fc1"), "{msg}");
    // A parameter is not an activation.
    assert!(grad_cam(&m, &x, &T, Some("features.conv1.weight")).is_err());
}

/// Flatten and one linear layer without bias: logit_t = sum_i w_{t,i} x_i.
struct LinearNet {
    fc: Linear,
}

impl LinearNet {
    fn new(inputs: usize) -> Self {
        LinearNet {
            fc: Linear::new("fc", inputs, 3, false, &mut Rng::new(11)),
        }
    }

    fn weight(&self, t: usize, i: usize) -> f32 {
        self.fc.weight.value.data()[t * self.fc.in_features() + i]
    }
}

impl Module for LinearNet {
    fn forward(&self, tape: &mut Tape, x: NodeId, mode: Mode) -> Result<NodeId> {
        let flat = tape.flatten(x, 1)?;
        self.fc.forward(tape, flat, mode)
    }

    fn describe(&self) -> String {
        "flatten + fc".into()
    }
}

#[test]
fn occlusion_of_single_pixels_on_a_linear_model() {
    let (c, h, w) = (2, 5, 6);
    let net = LinearNet::new(c * h * w);
    let x = Tensor::rand_normal(&[2, c, h, w], 0.0, 1.0, 4);
    let t = [2, 0];
    let r = occlusion(&net, &x, &t, 1, 1).unwrap();
    assert_eq!(r.shape(), x.shape());
    let per = c * h * w;
    for (i, &ti) in t.iter().enumerate() {
        for ch in 0..c {
            for p in 0..h * w {
                // The window zeroes the pixel in every channel.
                let want: f32 = (0..c)
                    .map(|k| {
                        let j = k * h * w + p;
                        net.weight(ti, j) * x.data()[i * per + j]
                    })
                    .sum();
                let got = r.data()[i * per + ch * h * w + p];
                assert!(
                    (got - want).abs() < 1e-5,
                    "sample {i} pixel {p}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn occlusion_single_channel_is_weight_times_input() {
    let net = LinearNet::new(28 * 28);
    let x = Tensor::rand_uniform(&[1, 1, 28, 28], 0., 1., 2);
    let r = occlusion(&net, &x, &[1], 1, 1).unwrap();
    for (i, (&got, &xi)) in r.data().iter().zip(x.data()).enumerate() {
        let want = net.weight(1, i) * xi;
        assert!((got - want).abs() < 1e-5, "pixel {i}: {got} vs {want}");
    }
}

#[test]
fn occlusion_windows_cover_the_border() {
    // 5x7 image, window 2, stride 2: offsets 0, 2, 3 down and 0, 2, 4, 5 across.
    let (h, w) = (5, 7);
    let net = LinearNet::new(h * w);
    let x = Tensor::rand_normal(&[1, 1, h, w], 0.0, 1.0, 8);
    let r = occlusion(&net, &x, &[0], 2, 2).unwrap();
    let contrib = |y: usize, xx: usize| net.weight(0, y * w + xx) * x.data()[y * w + xx];
    let (ys, xs) = ([0usize, 2, 3], [0usize, 2, 4, 5]);
    for y in 0..h {
        for xx in 0..w {
            let (mut sum, mut k) = (0.0f32, 0);
            for &y0 in &ys {
                for &x0 in &xs {
                    if (y0..y0 + 2).contains(&y) && (x0..x0 + 2).contains(&xx) {
                        sum += (y0..y0 + 2)
                            .flat_map(|a| (x0..x0 + 2).map(move |b| (a, b)))
                            .map(|(a, b)| contrib(a, b))
                            .sum::<f32>();
                        k += 1;
                    }
                }
            }
            assert!(k > 0, "pixel ({y}, {xx}) is covered");
            let got = r.data()[y * w + xx];
            assert!((got - sum / k as f32).abs() < 1e-5, "({y}, {xx})");
        }
    }
}

#[test]
fn occlusion_on_lenet_is_finite() {
    let (m, x) = (lenet(), input());
    let r = occlusion(&m, &x, &T, 4, 3).unwrap();
    assert_eq!(r.shape(), x.shape());
    assert!(r.all_finite());
    assert!(r.max_abs() > 0.0);
}

fn is_invalid(r: Result<Tensor>) -> bool {
    matches!(r, Err(Error::Invalid { .. } | Error::Shape { .. }))
}

#[test]
fn bad_arguments_are_errors() {
    let (m, x) = (lenet(), input());
    assert!(is_invalid(smoothgrad(&m, &x, &T, 0, 0.1, 1)));
    assert!(is_invalid(smoothgrad(&m, &x, &T, 4, -0.1, 1)));
    assert!(is_invalid(smoothgrad(&m, &x, &T, 4, f32::NAN, 1)));
    assert!(is_invalid(integrated_gradients(&m, &x, &T, 0, 0.0)));
    assert!(is_invalid(integrated_gradients(
        &m,
        &x,
        &T,
        4,
        f32::INFINITY
    )));
    assert!(is_invalid(occlusion(&m, &x, &T, 0, 1)));
    assert!(is_invalid(occlusion(&m, &x, &T, 29, 1)));
    assert!(is_invalid(occlusion(&m, &x, &T, 4, 0)));
    assert!(is_invalid(occlusion(&m, &x, &T, 4, 5)));
    // Targets: wrong count, out of range.
    assert!(is_invalid(smoothgrad(&m, &x, &[1], 2, 0.1, 1)));
    assert!(is_invalid(integrated_gradients(&m, &x, &[1, 10], 2, 0.0)));
    assert!(is_invalid(grad_cam(&m, &x, &[1, 10], None)));
    assert!(is_invalid(occlusion(&m, &x, &[10, 1], 4, 4)));
    // Shapes: an empty batch, a non-image input for the image methods.
    let empty = Tensor::zeros(&[0, 1, 28, 28]);
    assert!(is_invalid(smoothgrad(&m, &empty, &[], 2, 0.1, 1)));
    let flat = Tensor::zeros(&[2, 784]);
    assert!(is_invalid(grad_cam(&m, &flat, &T, None)));
    assert!(is_invalid(occlusion(&m, &flat, &T, 2, 2)));
    // A model without conv layers has no default Grad-CAM layer.
    let net = LinearNet::new(784);
    assert!(is_invalid(grad_cam(&net, &x, &[0, 1], None)));
}

#[test]
fn explain_dispatches_to_the_attributors() {
    let (m, x) = (lenet(), input());
    let targets = Targets::PerSample(T.to_vec());
    let methods = [
        Method::SmoothGrad {
            samples: 3,
            noise: 0.1,
            seed: 1,
        },
        Method::IntegratedGradients {
            steps: 8,
            baseline: 0.0,
        },
        Method::GradCam { layer: None },
        Method::Occlusion {
            window: 7,
            stride: 7,
        },
    ];
    for method in &methods {
        let a = explain(&m, &x, &targets, method).unwrap();
        assert_eq!(a.relevance.shape(), x.shape());
        assert!(a.relevance.all_finite());
        assert_eq!(a.targets, T.to_vec());
    }
}
