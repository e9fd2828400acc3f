//! relprop checkpoints: `Checkpoint::from_bytes` on arbitrary bytes, then on the same bytes
//! with their trailing CRC-32 repaired, so mutations reach the body decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relprop_nn::io::crc32;
use relprop_nn::io::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let _ = Checkpoint::from_bytes(data);
    if data.len() >= 16 {
        let mut fixed = data.to_vec();
        let n = fixed.len() - 4;
        let crc = crc32(&fixed[..n]);
        fixed[n..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(c) = Checkpoint::from_bytes(&fixed) {
            // What loads must be consistent: every tensor's values match its shape.
            for (_, t) in &c.params {
                assert_eq!(t.numel(), t.shape().iter().product::<usize>());
                assert!(t.all_finite());
            }
        }
    }
});
