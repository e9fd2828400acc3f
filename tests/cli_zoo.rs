//! `relprop predict`, `export` and `info` end to end.

mod common;

use common::{relprop, scratch};
use relprop::nn::io::{read_npy, read_safetensors, write_npy_f32, Array};

fn f32s(a: Array) -> Vec<f32> {
    match a {
        Array::F32 { data, .. } => data,
        other => panic!("expected f32, got {}", other.dtype()),
    }
}

#[test]
fn predict_with_fixture_weights_reproduces_the_fixture_logits() {
    let dir = scratch("predict");
    for model in ["mlp", "lenet5", "vgg_small"] {
        let fixture = format!(
            "{}/tests/fixtures/zennit/{model}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let arrays = read_safetensors(&fixture).unwrap();
        let get = |n: &str| arrays.iter().find(|(k, _)| k == n).unwrap().1.clone();
        let (x, out) = (
            dir.join(format!("{model}-x.npy")),
            dir.join(format!("{model}-logits.npy")),
        );
        write_npy_f32(&x, &get("x").into_tensor().unwrap()).unwrap();
        let run = relprop(&[
            "predict",
            "--model",
            model,
            "--weights",
            &fixture,
            "--input",
            x.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let ours = f32s(read_npy(&out).unwrap());
        let reference = f32s(get("logits"));
        let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = ours
            .iter()
            .zip(&reference)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff / scale < 1e-4,
            "{model}: logits differ by {:.2e}",
            diff / scale
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn export_round_trips_through_predict() {
    let dir = scratch("export");
    let st = dir.join("lenet5.safetensors");
    let run = relprop(&["export", "--model", "lenet5", "--out", st.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let names: Vec<String> = read_safetensors(&st)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"features.conv1.weight".to_string())
            && names.contains(&"classifier.fc3.bias".to_string())
    );

    let x = dir.join("x.npy");
    write_npy_f32(
        &x,
        &relprop::core::Tensor::rand_uniform(&[3, 1, 28, 28], 0.0, 1.0, 1),
    )
    .unwrap();
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    let x = x.to_str().unwrap();
    assert!(relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        x,
        "--out",
        a.to_str().unwrap()
    ])
    .status
    .success());
    let with = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--weights",
        st.to_str().unwrap(),
        "--input",
        x,
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(with.status.success());
    assert_eq!(f32s(read_npy(&a).unwrap()), f32s(read_npy(&b).unwrap()));

    // Without --out, the predicted classes are printed, one line per sample.
    let printed = relprop(&["predict", "--model", "lenet5", "--input", x]);
    assert_eq!(String::from_utf8_lossy(&printed.stdout).lines().count(), 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = scratch("bad");
    let out = dir.join("out.npy");
    let o = out.to_str().unwrap();
    let wrong = dir.join("wrong.npy");
    write_npy_f32(&wrong, &relprop::core::Tensor::zeros(&[2, 1, 27, 28])).unwrap();
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file at all").unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "predict",
            "--model",
            "lenet6",
            "--input",
            wrong.to_str().unwrap(),
            "--out",
            o,
        ],
        vec![
            "predict",
            "--model",
            "lenet5",
            "--input",
            wrong.to_str().unwrap(),
            "--out",
            o,
        ],
        vec![
            "predict",
            "--model",
            "lenet5",
            "--input",
            "/no/such/file.npy",
            "--out",
            o,
        ],
        vec![
            "predict",
            "--model",
            "lenet5",
            "--weights",
            garbage.to_str().unwrap(),
            "--input",
            wrong.to_str().unwrap(),
            "--out",
            o,
        ],
        vec!["export", "--model", "nope", "--out", o],
        vec!["info", "nope"],
    ];
    for args in cases {
        let run = relprop(&args);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            String::from_utf8_lossy(&run.stderr).starts_with("error: "),
            "{args:?}"
        );
        assert!(!out.exists(), "{args:?} wrote output");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn info_reports_parameters_and_accuracy() {
    let run = relprop(&["info", "lenet5"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success());
    // conv1 156 + conv2 2416 + fc1 48120 + fc2 10164 + fc3 850
    assert!(text.contains("61706"), "{text}");
    assert!(text.contains("held-out"), "{text}");
}
