//! `relprop graph`: DOT output with ops, shapes, rules and relevance sums; bad requests are
//! errors that write nothing.

mod common;

use common::{relprop, scratch};
use relprop::core::Tensor;
use relprop::nn::io::write_npy_f32;

#[test]
fn writes_the_graph_with_rules_and_relevance() {
    let dir = scratch("graph");
    let (plain, explained, x) = (
        dir.join("plain.dot"),
        dir.join("explained.dot"),
        dir.join("x.npy"),
    );
    let run = relprop(&[
        "graph",
        "--model",
        "lenet5",
        "--rules",
        "epsilon-gamma-box",
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let dot = std::fs::read_to_string(&plain).unwrap();
    assert!(dot.starts_with("digraph relprop {"));
    let line = |dot: &str, name: &str| {
        dot.lines()
            .find(|l| l.contains(&format!("label=\"{name}\\n")))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(line(&dot, "features.conv1").contains("rule: zbox"), "{dot}");
    assert!(line(&dot, "features.conv2").contains("rule: gamma(0.25)"));
    assert!(line(&dot, "features.conv2").contains("shape: [16, 10, 10]"));
    assert!(line(&dot, "classifier.fc1").contains("op: linear"));
    assert!(!dot.contains("R sum"));

    let digit = Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 5);
    write_npy_f32(&x, &digit).unwrap();
    let args = [
        "graph",
        "--model",
        "lenet5",
        "--input",
        x.to_str().unwrap(),
        "--target",
        "3",
        "--out",
        explained.to_str().unwrap(),
    ];
    let run = relprop(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let dot = std::fs::read_to_string(&explained).unwrap();
    // The one-hot seed puts relevance 1 on the logits node.
    assert!(
        line(&dot, "classifier.fc3").contains("R sum: +1.0000"),
        "{dot}"
    );
    assert!(line(&dot, "input").contains("R sum: "));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_write_nothing() {
    let dir = scratch("graph-bad");
    let png = dir.join("g.png");
    let run = relprop(&["graph", "--model", "lenet5", "--out", png.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains(".dot"));
    assert!(!png.exists());
    let dot = dir.join("g.dot");
    let run = relprop(&[
        "graph",
        "--model",
        "lenet5",
        "--rules",
        "nope",
        "--out",
        dot.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(!dot.exists());
    std::fs::remove_dir_all(&dir).ok();
}
