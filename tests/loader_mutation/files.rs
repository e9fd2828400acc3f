//! Checksums and hand-made files: seeds for the mutations.

use crate::common::*;
use crate::loaders::*;
use relprop::core::Tensor;
use relprop::explain::heatmap::{read_png_grey, write_png_rgb};
pub(crate) use relprop::nn::io::refresh_png_crcs;
use relprop::nn::io::{
    crc32, npy_f32_bytes, npy_i64_bytes, safetensors_bytes, Checkpoint, TrainingMeta,
};
use relprop::nn::state::state_dict;
use relprop::zoo::{pretrained, Architecture};

pub(crate) fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A relprop checkpoint ends in the CRC-32 of everything before it.
pub(crate) fn refresh_checkpoint_crc(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let n = bytes.len() - 4;
        let crc = crc32(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }
}

pub(crate) fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
pub(crate) fn zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if raw.is_empty() {
        vec![&[][..]]
    } else {
        raw.chunks(65535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(raw).to_be_bytes());
    out
}

/// A PNG with the given header fields and scanlines (each row: filter byte 0, then pixels).
pub(crate) fn png_file(
    w: u32,
    h: u32,
    depth: u8,
    color: u8,
    plte: Option<&[u8]>,
    pixel_row: &[u8],
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = plte {
        png_chunk(&mut out, b"PLTE", p);
    }
    let mut raw = Vec::new();
    for _ in 0..h {
        raw.push(0);
        raw.extend_from_slice(pixel_row);
    }
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Valid PNGs of every colour type and several bit depths, plus one from our own writer.
pub(crate) fn png_seeds() -> Vec<Vec<u8>> {
    let w = 6u32;
    let row = |bytes_per_px: usize| -> Vec<u8> {
        (0..w as usize * bytes_per_px)
            .map(|i| (i * 37 % 256) as u8)
            .collect()
    };
    let mut seeds = vec![
        png_file(w, 5, 8, 0, None, &row(1)),             // grey 8
        png_file(w, 5, 16, 0, None, &row(2)),            // grey 16
        png_file(w, 5, 1, 0, None, &[0b1010_1100]),      // grey 1
        png_file(w, 5, 4, 0, None, &[0x12, 0x34, 0x56]), // grey 4
        png_file(w, 5, 8, 2, None, &row(3)),             // RGB 8
        png_file(w, 5, 16, 6, None, &row(8)),            // RGBA 16
        png_file(w, 5, 8, 4, None, &row(2)),             // grey + alpha
        png_file(
            w,
            5,
            8,
            3,
            Some(&[0, 0, 0, 255, 128, 7]),
            &[0, 1, 1, 0, 1, 0],
        ), // palette
    ];
    let dir = scratch("png-seed");
    let path = dir.join("rgb.png");
    let rgb: Vec<u8> = (0..7 * 5 * 3).map(|i| (i * 11 % 256) as u8).collect();
    write_png_rgb(&path, &rgb, 5, 7).unwrap();
    seeds.push(std::fs::read(&path).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    for s in &seeds {
        read_png_grey(s).expect("seed PNGs are valid");
    }
    seeds
}

pub(crate) fn small_params() -> Vec<(String, Tensor)> {
    vec![
        (
            "features.conv1.weight".into(),
            Tensor::rand_normal(&[2, 1, 3, 3], 0.0, 1.0, 1),
        ),
        ("features.conv1.bias".into(), Tensor::zeros(&[2])),
        ("scale".into(), Tensor::scalar(0.5)),
        (
            "classifier.fc.weight".into(),
            Tensor::rand_normal(&[3, 8], 0.0, 1.0, 2),
        ),
    ]
}

pub(crate) fn seeds(loader: Loader) -> Vec<Vec<u8>> {
    match loader {
        Loader::Checkpoint => {
            let small = Checkpoint {
                architecture: "tiny".into(),
                params: small_params(),
                meta: TrainingMeta {
                    data: "unit test".into(),
                    epochs: 3,
                    seed: 9,
                    held_out_accuracy: Some(0.5),
                    notes: "mutation seed".into(),
                },
            };
            vec![
                small.to_bytes().unwrap(),
                pretrained::bytes(Architecture::Lenet5).to_vec(),
            ]
        }
        Loader::Safetensors => vec![
            safetensors_bytes(&small_params()).unwrap(),
            safetensors_bytes(&state_dict(&Architecture::Lenet5.build(1))).unwrap(),
        ],
        Loader::Npy => vec![
            npy_f32_bytes(&[2, 3], &[1.0, -2.0, 3.5, 0.0, f32::MIN_POSITIVE, 7.0]).unwrap(),
            npy_i64_bytes(&[4], &[0, 3, -1, i64::MAX]).unwrap(),
            npy_f32_bytes(
                &[1, 1, 28, 28],
                Tensor::rand_uniform(&[784], 0.0, 1.0, 5).data(),
            )
            .unwrap(),
        ],
        Loader::Png => png_seeds(),
        Loader::Digits => vec![DIGIT_SHEET.to_vec()],
        Loader::Onnx => vec![ONNX_BN_CNN.to_vec(), onnx_small()],
        Loader::Pth => ["mixed_zip.pth", "mixed_legacy.pth", "nested_zip.pth"]
            .iter()
            .map(|name| {
                let path = format!("{}/tests/fixtures/pth/{name}", env!("CARGO_MANIFEST_DIR"));
                std::fs::read(path).unwrap()
            })
            .collect(),
    }
}

/// A PyTorch export with inline weights (180 KB).
pub(crate) static ONNX_BN_CNN: &[u8] = include_bytes!("../fixtures/onnx/bn_cnn.onnx");

/// Protobuf by hand (varints and length-delimited fields), so that ONNX files can declare
/// what their bytes do not back.
pub(crate) fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field.
pub(crate) fn pb_int(out: &mut Vec<u8>, field: u64, v: u64) {
    pb_varint(out, field << 3);
    pb_varint(out, v);
}

/// A length-delimited field (bytes, string or sub-message).
pub(crate) fn pb_bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    pb_varint(out, field << 3 | 2);
    pb_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A `ModelProto` importing opset 17 around the given `GraphProto` body.
pub(crate) fn onnx_model(graph: &[u8]) -> Vec<u8> {
    let mut opset = Vec::new();
    pb_int(&mut opset, 2, 17);
    let mut out = Vec::new();
    pb_int(&mut out, 1, 8); // ir_version
    pb_bytes(&mut out, 2, b"hand");
    pb_bytes(&mut out, 7, graph);
    pb_bytes(&mut out, 8, &opset);
    out
}

/// A `TensorProto` named `name` with `dims` and ONNX type `dtype`, its data in `field`
/// (9 = raw_data, 4 = float_data packed, 7 = int64_data packed).
pub(crate) fn onnx_tensor(
    name: &str,
    dims: &[u64],
    dtype: u64,
    field: u64,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        pb_int(&mut t, 1, d);
    }
    pb_int(&mut t, 2, dtype);
    pb_bytes(&mut t, 8, name.as_bytes());
    pb_bytes(&mut t, field, data);
    t
}

/// A small valid model: two initializers (raw FLOAT, packed INT64), a Gemm node with
/// attributes, an input with a dynamic batch and an output.
pub(crate) fn onnx_small() -> Vec<u8> {
    let weights: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let mut shape = Vec::new();
    pb_varint(&mut shape, 1);
    pb_varint(&mut shape, 6);
    let mut graph = Vec::new();
    pb_bytes(&mut graph, 5, &onnx_tensor("w", &[2, 3], 1, 9, &weights));
    pb_bytes(&mut graph, 5, &onnx_tensor("s", &[2], 7, 7, &shape));
    let mut node = Vec::new();
    for input in ["x", "w"] {
        pb_bytes(&mut node, 1, input.as_bytes());
    }
    pb_bytes(&mut node, 2, b"y");
    pb_bytes(&mut node, 3, b"fc");
    pb_bytes(&mut node, 4, b"Gemm");
    let mut alpha = Vec::new();
    pb_bytes(&mut alpha, 1, b"alpha");
    pb_varint(&mut alpha, 2 << 3 | 5); // f, fixed32
    alpha.extend_from_slice(&1.5f32.to_le_bytes());
    pb_int(&mut alpha, 20, 1);
    pb_bytes(&mut node, 5, &alpha);
    let mut trans = Vec::new();
    pb_bytes(&mut trans, 1, b"transB");
    pb_int(&mut trans, 3, 1);
    pb_int(&mut trans, 20, 2);
    pb_bytes(&mut node, 5, &trans);
    pb_bytes(&mut graph, 1, &node);
    let value_info = |name: &str, dims: &[Vec<u8>]| {
        let mut shape = Vec::new();
        for d in dims {
            pb_bytes(&mut shape, 1, d);
        }
        let mut tensor = Vec::new();
        pb_int(&mut tensor, 1, 1);
        pb_bytes(&mut tensor, 2, &shape);
        let mut ty = Vec::new();
        pb_bytes(&mut ty, 1, &tensor);
        let mut v = Vec::new();
        pb_bytes(&mut v, 1, name.as_bytes());
        pb_bytes(&mut v, 2, &ty);
        v
    };
    let mut batch = Vec::new();
    pb_bytes(&mut batch, 2, b"batch");
    let mut three = Vec::new();
    pb_int(&mut three, 1, 3);
    pb_bytes(&mut graph, 11, &value_info("x", &[batch.clone(), three]));
    let mut two = Vec::new();
    pb_int(&mut two, 1, 2);
    pb_bytes(&mut graph, 12, &value_info("y", &[batch, two]));
    onnx_model(&graph)
}

/// A model whose graph holds the given (field, body) sub-messages.
pub(crate) fn onnx_graph_of(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut graph = Vec::new();
    for (field, body) in fields {
        pb_bytes(&mut graph, *field, body);
    }
    onnx_model(&graph)
}

/// A FLOAT tensor of shape [2] whose data `field` declares `len` bytes; 3 follow.
pub(crate) fn onnx_declaring(name: &str, field: u64, len: u64) -> Vec<u8> {
    let mut t = Vec::new();
    pb_int(&mut t, 1, 2);
    pb_int(&mut t, 2, 1);
    pb_bytes(&mut t, 8, name.as_bytes());
    pb_varint(&mut t, field << 3 | 2);
    pb_varint(&mut t, len);
    t.extend_from_slice(&[1, 2, 3]);
    t
}
