//! Batches larger than one chunk are explained a chunk at a time: the joined result must
//! be the batch's, sample for sample, with audits and notes numbered by batch index.

use relprop_core::{Conv2dSpec, Rng, Tensor};
use relprop_explain::batching::{self, CHUNK};
use relprop_explain::{explain, Composite, Method, Seed, Targets};
use relprop_nn::{Conv2d, GlobalAvgPool, Linear, Relu, Sequential};
use relprop_zoo::Architecture;

fn bdt() -> Composite {
    Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0))
}

/// Methods whose maps are per sample: gradients and the LRP family with each kind of seed.
fn per_sample_methods() -> [Method; 4] {
    [
        Method::Gradient,
        Method::Lrp {
            composite: Composite::epsilon_plus(1e-6),
            seed: Seed::OneHot,
        },
        Method::Sglrp { composite: bdt() },
        Method::Clrp2 { composite: bdt() },
    ]
}

#[test]
fn chunked_maps_equal_each_samples_own_map() {
    let model = Architecture::Lenet5.build(3);
    let n = 2 * CHUNK + 2; // three chunks, the last one of two samples
    let x = Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, 11);
    let targets: Vec<usize> = (0..n).map(|i| (i * 7) % 10).collect();
    for method in &per_sample_methods() {
        let full = explain(&model, &x, &Targets::PerSample(targets.clone()), method).unwrap();
        assert_eq!(full.relevance.shape(), x.shape());
        assert_eq!(full.logits.shape(), &[n, 10]);
        assert_eq!(full.targets, targets);
        assert_eq!(full.audit.seed_sums.len(), n);
        assert!(full.audit.rows.iter().all(|r| r.sums.len() == n));
        for i in [0, CHUNK - 1, CHUNK, n - 1] {
            let xi = x.batch_range(i, i + 1).unwrap();
            let one = explain(&model, &xi, &Targets::Class(targets[i]), method).unwrap();
            let row = full.relevance.batch_range(i, i + 1).unwrap();
            let diff = row.max_rel_diff(&one.relevance).unwrap();
            assert!(diff < 1e-4, "sample {i}: relative difference {diff}");
            let logits = full.logits.batch_range(i, i + 1).unwrap();
            assert!(logits.max_rel_diff(&one.logits).unwrap() < 1e-5);
            let (a, b) = (full.audit.rows[0].sums[i], one.audit.rows[0].sums[0]);
            assert!((a - b).abs() <= 1e-4 * b.abs() + 1e-6, "audit {a} vs {b}");
        }
    }
}

#[test]
fn notes_name_samples_by_their_index_in_the_batch() {
    let model = Architecture::Lenet5.build(3);
    let n = CHUNK + 10;
    let mut values = Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, 5).into_vec();
    // A huge input saturates the softmax: SGLRP notes the sample by index.
    let saturated = CHUNK + 3;
    let per = 28 * 28;
    values[saturated * per..(saturated + 1) * per]
        .iter_mut()
        .for_each(|v| *v *= 1e5);
    let x = Tensor::from_vec(values, &[n, 1, 28, 28]).unwrap();
    let a = explain(
        &model,
        &x,
        &Targets::Argmax,
        &Method::Sglrp { composite: bdt() },
    )
    .unwrap();
    let expected = format!("sample {saturated}:");
    assert!(
        a.audit.notes.iter().any(|n| n.starts_with(&expected)),
        "notes: {:?}",
        a.audit.notes
    );
}

#[test]
fn a_wrong_number_of_targets_names_the_whole_batch() {
    let model = Architecture::Lenet5.build(3);
    let n = CHUNK + 5;
    let x = Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, 2);
    let err = explain(
        &model,
        &x,
        &Targets::PerSample(vec![1; n - 1]),
        &Method::Gradient,
    )
    .err()
    .expect("one target short");
    assert!(
        err.to_string()
            .contains(&format!("{} targets were given for {n} samples", n - 1)),
        "{err}"
    );
}

#[test]
fn chunks_shrink_with_the_sample_size() {
    let len = |shape: &[usize]| batching::chunk_len(&Tensor::zeros(shape));
    assert_eq!(len(&[500, 1, 28, 28]), CHUNK, "digits keep the full chunk");
    assert_eq!(len(&[500, 3, 32, 32]), CHUNK);
    assert_eq!(len(&[500, 3, 64, 64]), 16);
    assert_eq!(
        len(&[16, 3, 224, 224]),
        1,
        "ImageNet samples go one at a time"
    );
    assert_eq!(len(&[4, 3, 1000, 1000]), 1, "never fewer than one");
}

#[test]
fn large_samples_explained_one_per_thread_equal_the_whole_batch() {
    // A sample of 4x224x224 values is a chunk of its own; the chunks run side by side.
    let mut rng = Rng::new(4);
    let model = Sequential::new("big")
        .with(Conv2d::new(
            "conv",
            4,
            3,
            [3, 3],
            Conv2dSpec::new(2, 1),
            true,
            &mut rng,
        ))
        .with(Relu::new())
        .with(GlobalAvgPool::new("pool"))
        .with(Linear::new("fc", 3, 5, true, &mut rng));
    let n = 5;
    let x = Tensor::rand_uniform(&[n, 4, 224, 224], 0.0, 1.0, 8);
    assert_eq!(batching::chunk_len(&x), 1);
    let targets: Vec<usize> = (0..n).map(|i| (i * 3) % 5).collect();
    for method in &per_sample_methods() {
        let full = explain(&model, &x, &Targets::PerSample(targets.clone()), method).unwrap();
        assert_eq!(full.targets, targets);
        assert!(full.audit.rows.iter().all(|r| r.sums.len() == n));
        for (i, &target) in targets.iter().enumerate() {
            let xi = x.batch_range(i, i + 1).unwrap();
            let one = explain(&model, &xi, &Targets::Class(target), method).unwrap();
            let row = full.relevance.batch_range(i, i + 1).unwrap();
            let diff = row.max_rel_diff(&one.relevance).unwrap();
            assert!(diff < 1e-5, "sample {i}: relative difference {diff}");
            let (a, b) = (full.audit.rows[0].sums[i], one.audit.rows[0].sums[0]);
            assert!((a - b).abs() <= 1e-5 * b.abs() + 1e-9, "audit {a} vs {b}");
        }
    }
}
