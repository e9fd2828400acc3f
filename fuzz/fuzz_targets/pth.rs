//! pth: `parse_pth` (the restricted unpickler, both layouts) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_nn::io::parse_pth;

fuzz_target!(|data: &[u8]| {
    if let Ok(arrays) = parse_pth(data) {
        let mut total = 0usize;
        for (_, a) in &arrays {
            assert_eq!(a.numel(), a.shape().iter().product::<usize>());
            total += a.numel();
        }
        // Tensors together never hold more elements than the file has bytes, twice over.
        assert!(total <= 2 * data.len() + (1 << 16));
    }
});
