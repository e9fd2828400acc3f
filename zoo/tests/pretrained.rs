//! The embedded weights load, and reach the accuracy the README documents.

use relprop_zoo::training::held_out_accuracy;
use relprop_zoo::{pretrained, Architecture, ALL};

/// The documented floor of each model's held-out accuracy.
fn floor(arch: Architecture) -> f32 {
    match arch {
        Architecture::Mlp => 0.96,
        Architecture::Lenet5 => 0.98,
        Architecture::VggSmall | Architecture::VggSmallBn | Architecture::ResnetSmall => 0.985,
        Architecture::Multidigit => 0.90,
        Architecture::EfficientnetLite0 => unreachable!("not a digit model"),
    }
}

#[test]
fn pretrained_models_reach_their_documented_accuracy() {
    for arch in ALL {
        let model = pretrained::load(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let acc = held_out_accuracy(&model).unwrap();
        let recorded = pretrained::checkpoint(arch)
            .unwrap()
            .meta
            .held_out_accuracy
            .unwrap();
        println!(
            "{arch}: held-out {:.2}% (recorded {:.2}%)",
            100.0 * acc,
            100.0 * recorded
        );
        assert!(acc >= floor(arch), "{arch}: {acc} below {}", floor(arch));
        assert!(
            (acc - recorded).abs() <= 1e-3,
            "{arch}: measured {acc}, checkpoint says {recorded}"
        );
    }
}

#[test]
fn embedded_weights_stay_small() {
    let total: usize = ALL.iter().map(|&a| pretrained::bytes(a).len()).sum();
    assert!(total < 8_400_000, "the zoo's weights take {total} bytes");
}
