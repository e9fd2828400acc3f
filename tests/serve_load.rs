//! `relprop serve` under load, on 127.0.0.1 only: 16 concurrent clients send 1,024 mixed
//! requests (valid explain, predict, models, page and digit requests, and malformed,
//! oversized and misaddressed ones). Every valid request must succeed, every invalid one
//! must get its 4xx with a JSON error, and the server must still answer afterwards.
//! Throughput and latency are printed (`-- --nocapture`), never asserted.

mod serve_common;

use serde_json::{json, Value};
use serve_common::{floats, get_json, post_json, request, Server};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const PER_CLIENT: usize = 64;
const KINDS: usize = 14;

/// One request of kind `kind`: method, path, extra head lines, body, and the status a
/// correct server gives it.
fn build(kind: usize, j: usize, x: &Value) -> (&'static str, String, &'static str, Vec<u8>, u16) {
    let input = json!({"shape": [1, 28, 28], "data": x});
    let explain = |method: &str| {
        json!({"model": "lenet5", "method": method, "input": input})
            .to_string()
            .into_bytes()
    };
    match kind {
        0 => ("GET", "/api/models".into(), "", vec![], 200),
        1 => (
            "POST",
            "/api/predict".into(),
            "",
            json!({"model": "lenet5", "input": input})
                .to_string()
                .into_bytes(),
            200,
        ),
        2 => ("POST", "/api/explain".into(), "", explain("lrp"), 200),
        3 => ("POST", "/api/explain".into(), "", explain("sglrp"), 200),
        4 => ("POST", "/api/explain".into(), "", explain("clrp1"), 200),
        5 => ("POST", "/api/explain".into(), "", explain("gradient"), 200),
        6 => ("GET", "/".into(), "", vec![], 200),
        7 => (
            "POST",
            "/api/explain".into(),
            "",
            b"{\"model\": \"lenet5\", \"method\": ".to_vec(),
            400,
        ),
        8 => (
            "POST",
            "/api/explain".into(),
            "",
            json!({"model": "lenet5", "method": "lrp",
            "input": {"shape": [1, 28, 14], "data": vec![0.5; 392]}})
            .to_string()
            .into_bytes(),
            400,
        ),
        9 => (
            "POST",
            "/api/explain".into(),
            "Content-Length: 8388608\r\n",
            vec![],
            413,
        ),
        10 => (
            "POST",
            "/api/predict".into(),
            "",
            json!({"model": "resnet_huge", "input": input})
                .to_string()
                .into_bytes(),
            400,
        ),
        11 => (
            "GET",
            format!("/api/digit?class=5&index={j}"),
            "",
            vec![],
            200,
        ),
        12 => ("GET", "/api/nowhere".into(), "", vec![], 404),
        _ => (
            "POST",
            "/api/explain".into(),
            "",
            json!({"model": "lenet5", "method": "lrp", "target": 99,
            "input": input})
            .to_string()
            .into_bytes(),
            400,
        ),
    }
}

/// What one request came to.
struct Outcome {
    valid: bool,
    ok: bool,
    status: Option<u16>,
    latency: Duration,
}

/// Sends one request and checks its answer's status and shape.
fn send(addr: SocketAddr, kind: usize, j: usize, x: &Value) -> Outcome {
    let (method, path, extra, body, want) = build(kind, j, x);
    let start = Instant::now();
    let answer = request(addr, method, &path, extra, &body);
    let latency = start.elapsed();
    let (status, ok) = match &answer {
        Ok((status, bytes)) => {
            let fits = *status == want
                && match (want, kind) {
                    (200, 6) => bytes.starts_with(b"<!doctype html>"),
                    (200, _) => {
                        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                        match kind {
                            2..=5 => v["relevance"]["data"]
                                .as_array()
                                .is_some_and(|d| d.len() == 784),
                            1 => v["predicted"].as_u64().is_some_and(|p| p < 10),
                            0 => v.as_array().is_some_and(|m| !m.is_empty()),
                            _ => v["label"] == 5,
                        }
                    }
                    _ => {
                        serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v["error"].is_string())
                    }
                };
            (Some(*status), fits)
        }
        Err(_) => (None, false),
    };
    Outcome {
        valid: want == 200,
        ok,
        status,
        latency,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn a_burst_of_mixed_requests_is_served_without_errors() {
    let server = Server::start(&["--model", "lenet5"]);
    let (status, d) = get_json(server.addr, "/api/digit?class=3");
    assert_eq!(status, 200);
    let x = Arc::new(d["data"].clone());
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addr, x) = (server.addr, Arc::clone(&x));
            std::thread::spawn(move || {
                (0..PER_CLIENT)
                    .map(|j| send(addr, (i + j) % KINDS, j, &x))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a client thread"))
        .collect();
    let wall = start.elapsed();

    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    let count = |valid: bool, ok: bool| {
        outcomes
            .iter()
            .filter(|o| o.valid == valid && o.ok == ok)
            .count()
    };
    let busy = outcomes.iter().filter(|o| o.status == Some(503)).count();
    let failed = outcomes.iter().filter(|o| o.status.is_none()).count();
    println!(
        "load test: {} requests from {CLIENTS} clients in {:.2} s",
        outcomes.len(),
        wall.as_secs_f64()
    );
    println!(
        "  throughput {:.0} requests/s",
        outcomes.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "  latency p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "  valid: {} answered correctly, {} errors",
        count(true, true),
        count(true, false)
    );
    println!(
        "  invalid: {} got their 4xx with a JSON error, {} did not",
        count(false, true),
        count(false, false)
    );
    println!("  503 busy: {busy}, connection failures: {failed}");

    assert!(outcomes.len() >= 1000);
    assert_eq!(count(true, false), 0, "valid requests failed");
    assert_eq!(count(false, false), 0, "invalid requests without their 4xx");
    assert!(count(false, true) > 300, "the mix holds malformed requests");
    // Still serving.
    let (status, answer) = post_json(
        server.addr,
        "/api/explain",
        &json!({"model": "lenet5", "method": "lrp", "input": {"shape": [1, 28, 28], "data": *x}}),
    );
    assert_eq!(status, 200);
    assert_eq!(answer["predicted"], 3);
}

#[test]
fn lenet5_explanations_answer_the_same_map_every_time() {
    let server = Server::start(&["--model", "lenet5"]);
    let (_, d) = get_json(server.addr, "/api/digit?class=8");
    let body = json!({"model": "lenet5", "method": "lrp", "input": {"shape": [1, 28, 28], "data": d["data"]}});
    let mut round_trips = Vec::new();
    let mut server_ms = Vec::new();
    let mut first: Option<Vec<f32>> = None;
    for _ in 0..100 {
        let start = Instant::now();
        let (status, answer) = post_json(server.addr, "/api/explain", &body);
        round_trips.push(start.elapsed());
        assert_eq!(status, 200);
        server_ms.push(answer["elapsed_ms"].as_f64().unwrap());
        let map = floats(&answer["relevance"]["data"]);
        match &first {
            None => first = Some(map),
            Some(f) => assert_eq!(f, &map, "the same request gives the same map"),
        }
    }
    round_trips.sort();
    server_ms.sort_by(f64::total_cmp);
    println!(
        "lenet5 lrp explanation over HTTP (100 sequential requests): round trip p50 {:.2} ms, p95 {:.2} ms; computed in p50 {:.2} ms",
        ms(percentile(&round_trips, 0.5)),
        ms(percentile(&round_trips, 0.95)),
        server_ms[50]
    );
}
