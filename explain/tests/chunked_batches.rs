//! Batches larger than one chunk are explained a chunk at a time: the joined result must
//! be the batch's, sample for sample, with audits and notes numbered by batch index.

use relprop_core::Tensor;
use relprop_explain::batching::CHUNK;
use relprop_explain::{explain, Composite, Method, Seed, Targets};
use relprop_zoo::Architecture;

fn bdt() -> Composite {
    Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0))
}

#[test]
fn chunked_maps_equal_each_samples_own_map() {
    let model = Architecture::Lenet5.build(3);
    let n = 2 * CHUNK + 2; // three chunks, the last one of two samples
    let x = Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, 11);
    let targets: Vec<usize> = (0..n).map(|i| (i * 7) % 10).collect();
    let methods = [
        Method::Gradient,
        Method::Lrp {
            composite: Composite::epsilon_plus(1e-6),
            seed: Seed::OneHot,
        },
        Method::Sglrp { composite: bdt() },
        Method::Clrp2 { composite: bdt() },
    ];
    for method in &methods {
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
