//! NumPy `.npy`: `parse_npy` on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_nn::io::parse_npy;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = parse_npy(data) {
        assert_eq!(a.numel(), a.shape().iter().product::<usize>());
        let _ = a.into_tensor();
    }
});
