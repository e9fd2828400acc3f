//! `relprop serve`'s JSON API: the same maps as `relprop explain`, the same classes as
//! `relprop predict`, a JSON 4xx for every bad request, and a clean stop on SIGINT.

mod common;
mod serve_common;

use common::{relprop, scratch};
use relprop::nn::io::{read_npy, write_npy_f32, Array};
use serde_json::json;
use serve_common::{floats, get_json, post_json, request, Server};

/// The bundled test digit `index` of `class`, from the server.
fn digit(server: &Server, class: usize, index: usize) -> Vec<f32> {
    let (status, d) = get_json(
        server.addr,
        &format!("/api/digit?class={class}&index={index}"),
    );
    assert_eq!(status, 200);
    assert_eq!(d["label"], class);
    assert_eq!(d["shape"], json!([1, 28, 28]));
    floats(&d["data"])
}

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    match read_npy(path).unwrap() {
        Array::F32 { data, .. } => data,
        other => panic!("expected f32, found {}", other.dtype()),
    }
}

#[test]
fn explain_answers_what_the_command_line_writes() {
    let server = Server::start(&["--model", "lenet5,multidigit"]);
    let (status, models) = get_json(server.addr, "/api/models");
    assert_eq!(status, 200);
    assert_eq!(
        models,
        json!([
            {"name": "lenet5", "input_shape": [1, 28, 28], "classes": 10},
            {"name": "multidigit", "input_shape": [1, 56, 56], "classes": 10}
        ])
    );
    let dir = scratch("serve-equal");
    let x = digit(&server, 7, 2);
    let input = dir.join("x.npy");
    write_npy_f32(
        &input,
        &relprop::core::Tensor::from_vec(x.clone(), &[1, 1, 28, 28]).unwrap(),
    )
    .unwrap();
    // Default rules, an explicit rule set with a target, and a gradient baseline.
    let cases: [(&str, Option<&str>, Option<usize>); 4] = [
        ("sglrp", None, None),
        ("lrp", Some("epsilon-alpha2-beta1"), Some(5)),
        ("clrp2", None, Some(1)),
        ("gradient", None, None),
    ];
    for (method, rules, target) in cases {
        let mut body = json!({"model": "lenet5", "method": method,
            "input": {"shape": [1, 28, 28], "data": x}});
        let mut args = vec!["explain", "--model", "lenet5", "--method", method];
        let out = dir.join(format!("{method}.npy"));
        let rules_text = rules.unwrap_or("");
        let target_text = target.unwrap_or(0).to_string();
        if let Some(r) = rules {
            body["rules"] = json!(r);
            args.extend(["--rules", rules_text]);
        }
        if let Some(t) = target {
            body["target"] = json!(t);
            args.extend(["--target", target_text.as_str()]);
        }
        let input_text = input.to_str().unwrap();
        let out_text = out.to_str().unwrap();
        args.extend(["--input", input_text, "--out", out_text]);
        let cli = relprop(&args);
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        let (status, answer) = post_json(server.addr, "/api/explain", &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["relevance"]["shape"], json!([1, 28, 28]));
        let ours = floats(&answer["relevance"]["data"]);
        let written = read_f32(&out);
        assert_eq!(ours.len(), 784);
        let differ = ours.iter().zip(&written).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "{method}: {differ} of 784 values differ from relprop explain"
        );
        assert_eq!(answer["predicted"], 7, "{method}");
        assert_eq!(answer["target"], target.unwrap_or(7));
        let p = floats(&answer["probabilities"]);
        assert_eq!(p.len(), 10);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let audit = answer["audit"].as_array().unwrap();
        assert!(audit.len() >= 5, "{method}: {audit:?}");
        assert_eq!(audit.last().unwrap()["label"], "input");
        for row in audit {
            assert!(row["op"].is_string() && row["sum"].is_number() && row["error"].is_number());
        }
        // The input row's sum is the map's sum (CLRP's audit is before its positive part).
        if method.starts_with("clrp") {
            continue;
        }
        let total: f64 = ours.iter().map(|&v| v as f64).sum();
        let input_sum = audit.last().unwrap()["sum"].as_f64().unwrap();
        assert!(
            (total - input_sum).abs() < 1e-4 * (1.0 + total.abs()),
            "{method}"
        );
    }

    // predict: the class `relprop predict` prints.
    let (status, p) = post_json(
        server.addr,
        "/api/predict",
        &json!({"model": "lenet5", "input": {"shape": [1, 28, 28], "data": x}}),
    );
    assert_eq!(status, 200);
    let cli = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(cli.status.success());
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(printed.trim(), format!("0\t{}", p["predicted"]));

    // A PNG of the digit explains as `relprop explain --input digit.png` does.
    let grey: Vec<u8> = x
        .iter()
        .flat_map(|&v| [(v * 255.0).round() as u8; 3])
        .collect();
    let png = relprop::explain::heatmap::png_rgb_bytes(&grey, 28, 28).unwrap();
    let png_path = dir.join("digit.png");
    std::fs::write(&png_path, &png).unwrap();
    let out = dir.join("png.npy");
    let cli = relprop(&[
        "explain",
        "--model",
        "lenet5",
        "--method",
        "lrp",
        "--input",
        png_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let (status, answer) = post_json(
        server.addr,
        "/api/explain",
        &json!({"model": "lenet5", "method": "lrp", "png": encoded}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(floats(&answer["relevance"]["data"]), read_f32(&out));
    // The same PNG does not fit the 56x56 model: a 400 naming the sizes.
    let (status, answer) = post_json(
        server.addr,
        "/api/explain",
        &json!({"model": "multidigit", "method": "lrp", "png": encoded}),
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("28x28"),
        "{answer}"
    );

    // Composites: built from two chosen digits, or drawn by the zoo's generator.
    let (status, c) = get_json(server.addr, "/api/composite?left=2&right=9");
    assert_eq!(status, 200);
    assert_eq!(c["labels"], json!([2, 9]));
    assert_eq!(floats(&c["data"]).len(), 56 * 56);
    let (status, c) = get_json(server.addr, "/api/composite?seed=3");
    assert_eq!(status, 200);
    let labels = c["labels"].as_array().unwrap();
    assert_ne!(labels[0], labels[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_requests_get_a_json_4xx_and_the_server_keeps_serving() {
    let server = Server::start(&["--model", "lenet5"]);
    let zeros = vec![0.0f32; 784];
    let ok_input = json!({"shape": [1, 28, 28], "data": zeros});
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/api/explain",
            json!({"model": "lenet5", "input": ok_input}),
            "method",
        ),
        (
            "/api/explain",
            json!({"model": "nope", "method": "lrp", "input": ok_input}),
            "unknown model",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "magic", "input": ok_input}),
            "unknown method",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "rules": "x", "input": ok_input}),
            "unknown rule set",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "target": 10, "input": ok_input}),
            "target 10",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "target": -1, "input": ok_input}),
            "invalid",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp"}),
            "missing input",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "input": {"shape": [1, 28, 27], "data": []}}),
            "shape",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "input": {"shape": [1, 28, 28], "data": [1.0]}}),
            "784 values",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "input": {"shape": [1, 28, 28], "data": [1e39]}}),
            "",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "png": "%%%"}),
            "base64",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "png": "aGVsbG8="}),
            "png",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "input": ok_input, "png": "aGVsbG8="}),
            "not several",
        ),
        (
            "/api/explain",
            json!({"model": "lenet5", "method": "lrp", "input": ok_input, "extra": 1}),
            "unknown field",
        ),
        ("/api/predict", json!([1, 2, 3]), "invalid request"),
    ];
    for (path, body, says) in &cases {
        let (status, answer) = post_json(server.addr, path, body);
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"].as_str().expect("an error message");
        assert!(message.contains(says), "{body}: {message}");
    }
    let raw: Vec<(&str, &str, &str, &[u8], u16)> = vec![
        ("POST", "/api/explain", "", b"{not json", 400),
        ("POST", "/api/explain", "", &[0xff, 0xfe, 0x00], 400),
        (
            "POST",
            "/api/explain",
            "Content-Length: 1000000000\r\n",
            b"",
            413,
        ),
        ("GET", "/api/nothing", "", b"", 404),
        ("GET", "/api/explain", "", b"", 405),
        ("GET", "/api/digit?class=10", "", b"", 400),
        ("GET", "/api/digit?class=x", "", b"", 400),
        ("GET", "/api/composite?left=1", "", b"", 400),
    ];
    for (method, path, extra, body, want) in raw {
        let (status, bytes) = request(server.addr, method, path, extra, body).unwrap();
        assert_eq!(status, want, "{method} {path}");
        let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert!(answer["error"].is_string(), "{method} {path}: {answer}");
    }
    // A body over the limit that was sent in full is refused as well.
    let big = vec![b' '; (4 << 20) + 1];
    let (status, _) = request(server.addr, "POST", "/api/predict", "", &big).unwrap();
    assert_eq!(status, 413);
    // Still serving.
    let (status, answer) = post_json(
        server.addr,
        "/api/predict",
        &json!({"model": "lenet5", "input": ok_input}),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer["predicted"].as_u64().unwrap() < 10);
    let (status, page) = request(server.addr, "GET", "/", "", b"").unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<canvas id=\"draw\""));
}

#[test]
fn sigint_stops_the_server_cleanly() {
    let mut server = Server::start(&["--model", "lenet5"]);
    let (status, _) = get_json(server.addr, "/api/models");
    assert_eq!(status, 200);
    let pid = server.child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-s", "INT", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    // Bounded wait: the stop takes well under the deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no stop after SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(std::net::TcpStream::connect(server.addr).is_err());
}

#[test]
fn a_model_that_is_not_there_is_refused_at_start() {
    let out = relprop(&["serve", "--port", "0", "--model", "no-such-model"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    let out = relprop(&["serve", "--port", "0", "--workers", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
