//! Lesson 5: explaining a digit with LRP and drawing the heatmap.
//!
//! `explain` records the forward pass once, resolves a composite (which rule for which
//! layer) against the recorded tape, and walks back from the seed `e_t`. The audit shows
//! the relevance sum at every layer: with conserving rules it stays at the seed's sum.
//! Run: `cargo run --release --example 05_lrp_heatmap` (writes lrp_heatmap.png).

use relprop::core::{Error, Result, Tensor};
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::{explain, Composite, Method, Seed, Targets};
use relprop::zoo::{digits, pretrained, Architecture};

fn main() -> Result<()> {
    let model = pretrained::load(Architecture::Lenet5)
        .map_err(|e| Error::invalid("weights", e.to_string()))?;
    let data = digits::load().map_err(|e| Error::invalid("digits", e.to_string()))?;
    let first_test_digit = data.test_indices()[0];
    let x = Tensor::from_vec(data.image_f32(first_test_digit), &[1, 1, 28, 28])?;

    // EpsilonPlus: ZPlus on convolutions, Epsilon(1e-6) on dense layers.
    let method = Method::Lrp {
        composite: Composite::epsilon_plus(1e-6),
        seed: Seed::OneHot,
    };
    let a = explain(&model, &x, &Targets::Argmax, &method)?;
    println!(
        "label {}, explained class {}",
        data.label(first_test_digit),
        a.targets[0]
    );
    print!("{}", a.audit);

    let mut grid = Grid::new(112, 4);
    grid.column_titles(["input", "lrp"]);
    grid.add_titled_row(
        format!("class {}", a.targets[0]),
        vec![
            Cell::Input(x.data().to_vec(), 28, 28),
            Cell::Heatmap(a.relevance.data().to_vec(), 28, 28, ColorMap::Bwr),
        ],
    );
    grid.legend(ColorMap::Bwr, ["red: for the class, blue: against"]);
    grid.save(std::path::Path::new("lrp_heatmap.png"))
        .map_err(|e| Error::invalid("png", e.to_string()))?;
    println!("wrote lrp_heatmap.png (red: evidence for the class, blue: against)");
    Ok(())
}
