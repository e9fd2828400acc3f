//! `relprop serve` with the ImageNet model (when its weights are in the cache): the model
//! is listed with its class names, the bundled photos are offered, and a photo or an
//! uploaded image of any size is explained exactly as `relprop explain` explains the file.

mod common;
mod serve_common;

use base64::Engine;
use common::{relprop, scratch};
use relprop::nn::io::{read_npy, Array};
use relprop::zoo::imagenet;
use relprop::zoo::photos::PHOTOS;
use serde_json::json;
use serve_common::{floats, get_json, post_json, Server};
use std::path::Path;

/// Whether the published weights are in the cache; under CI they must be.
fn have_weights() -> bool {
    match imagenet::cached_pth() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI needs the efficientnet_lite0 weights: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// `relprop explain --method lrp` on `input`: the relevance it writes.
fn cli_relevance(input: &Path, out: &Path) -> Vec<f32> {
    let o = relprop(&[
        "explain",
        "--model",
        "efficientnet_lite0",
        "--input",
        input.to_str().unwrap(),
        "--method",
        "lrp",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    match read_npy(out).unwrap() {
        Array::F32 { shape, data } => {
            assert_eq!(shape, vec![1, 3, 224, 224]);
            data
        }
        other => panic!("expected f32, found {}", other.dtype()),
    }
}

/// The server's LRP relevance for `body`'s input, checked to be a `[3, 224, 224]` map.
fn served_relevance(server: &Server, mut body: serde_json::Value) -> (Vec<f32>, usize) {
    body["model"] = json!("efficientnet_lite0");
    body["method"] = json!("lrp");
    let (status, answer) = post_json(server.addr, "/api/explain", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["relevance"]["shape"], json!([3, 224, 224]));
    assert_eq!(answer["probabilities"].as_array().unwrap().len(), 1000);
    let predicted = answer["predicted"].as_u64().unwrap() as usize;
    (floats(&answer["relevance"]["data"]), predicted)
}

fn count_differences(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[test]
fn photos_and_uploads_are_explained_as_the_command_line_explains_the_file() {
    if !have_weights() {
        return;
    }
    let server = Server::start(&["--model", "lenet5,efficientnet_lite0"]);
    let (status, models) = get_json(server.addr, "/api/models");
    assert_eq!(status, 200);
    let listed = &models[1];
    assert_eq!(listed["name"], "efficientnet_lite0");
    assert_eq!(listed["input_shape"], json!([3, 224, 224]));
    assert_eq!(listed["classes"], 1000);
    let names = listed["class_names"].as_array().unwrap();
    assert_eq!(names.len(), 1000);
    assert_eq!(names[967], "espresso");
    // A digit model lists no class names: its classes are its digits.
    assert!(models[0].get("class_names").is_none());

    let (status, photos) = get_json(server.addr, "/api/photos");
    assert_eq!(status, 200);
    let listed: Vec<&str> = photos
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, PHOTOS.map(|p| p.name).to_vec());
    let (status, missing) = get_json(server.addr, "/api/photos/no-such-photo");
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("coffee"));

    let dir = scratch("serve-photos");
    // A bundled photo, as the page sends it (the array from /api/photos/NAME).
    let coffee = PHOTOS.iter().find(|p| p.name == "coffee").unwrap();
    let file = dir.join("coffee.jpg");
    std::fs::write(&file, coffee.jpeg).unwrap();
    let expected = cli_relevance(&file, &dir.join("coffee.npy"));
    let (status, photo) = get_json(server.addr, "/api/photos/coffee");
    assert_eq!(status, 200);
    assert_eq!(photo["shape"], json!([3, 224, 224]));
    let (ours, predicted) = served_relevance(
        &server,
        json!({"input": {"shape": [3, 224, 224], "data": photo["data"]}}),
    );
    assert_eq!(count_differences(&ours, &expected), 0);
    assert_eq!(names[predicted], "espresso");
    // The same photo uploaded as its JPEG bytes.
    let text = base64::engine::general_purpose::STANDARD.encode(coffee.jpeg);
    let (ours, _) = served_relevance(&server, json!({"image": text}));
    assert_eq!(count_differences(&ours, &expected), 0);

    // An upload of an odd size (301x187, re-encoded): resized and cropped as the CLI does.
    let image = image::load_from_memory(coffee.jpeg).unwrap().to_rgb8();
    let odd = image::imageops::crop_imm(&image, 40, 30, 301, 187).to_image();
    let odd_file = dir.join("odd.jpg");
    odd.save(&odd_file).unwrap();
    let expected = cli_relevance(&odd_file, &dir.join("odd.npy"));
    let bytes = std::fs::read(&odd_file).unwrap();
    let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (ours, _) = served_relevance(&server, json!({"image": text}));
    assert_eq!(count_differences(&ours, &expected), 0);

    // Not an image: one clear 400, and the server keeps answering.
    let text = base64::engine::general_purpose::STANDARD.encode(b"not an image");
    let (status, answer) = post_json(
        server.addr,
        "/api/explain",
        &json!({"model": "efficientnet_lite0", "method": "lrp", "image": text}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("image:"));
    // Two inputs at once are refused.
    let (status, _) = post_json(
        server.addr,
        "/api/explain",
        &json!({"model": "efficientnet_lite0", "method": "lrp", "image": text, "png": text}),
    );
    assert_eq!(status, 400);
}
