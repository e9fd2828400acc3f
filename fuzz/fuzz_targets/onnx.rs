//! onnx: `decode_model` on arbitrary bytes (no folder, so no external file is opened).
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_onnx::{decode_model, AttrValue, ConstData, ConstTensor};

/// A loaded constant holds exactly the elements its dims declare.
fn check(t: &ConstTensor) {
    let numel: usize = t.dims.iter().product();
    let len = match &t.data {
        ConstData::F32(v) => v.len(),
        ConstData::I64(v) => v.len(),
    };
    assert_eq!(len, numel, "{:?}", t.dims);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = decode_model(data, None) {
        assert!(model.opset >= 1);
        for (_, t) in &model.graph.initializers {
            check(t);
        }
        for node in &model.graph.nodes {
            assert!(!node.op_type.is_empty());
            for a in &node.attributes {
                if let AttrValue::Tensor(t) = &a.value {
                    check(t);
                }
            }
        }
    }
});
