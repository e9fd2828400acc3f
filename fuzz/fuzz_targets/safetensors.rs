//! safetensors: `parse_safetensors` on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_nn::io::parse_safetensors;

fuzz_target!(|data: &[u8]| {
    if let Ok(arrays) = parse_safetensors(data) {
        for (_, a) in &arrays {
            assert_eq!(a.numel(), a.shape().iter().product::<usize>());
        }
    }
});
