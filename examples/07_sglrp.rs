//! Lesson 7: SGLRP, the class-discriminative seed.
//!
//! Plain LRP explains the logit `z_t`, and on an image with two digits it lights up both.
//! SGLRP (Iwana et al. 2019) explains the *softmax probability* `y_t` instead: its seed is
//! the gradient of `y_t` with respect to the logits, `y_t (e_t - y)`: positive at the target,
//! negative at every competitor in proportion to its probability. Relevance for the other
//! digit's class is then subtracted. The maps of both classes, LRP beside SGLRP, go to
//! `relprop-examples/07_sglrp.png`. Run: `cargo run --release --example 07_sglrp`.

use relprop::core::{Error, Result, Tensor};
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::{explain, Composite, Method, Seed, Targets};
use relprop::zoo::digits::{self, Split};
use relprop::zoo::pairs::{DigitPairGenerator, CANVAS};
use relprop::zoo::{pretrained, Architecture};

/// Share of the positive relevance that falls inside the box of digit `k`.
fn mass_in_box(r: &Tensor, c: &relprop::zoo::pairs::DigitPair, k: usize) -> f32 {
    let (mut inside, mut total) = (0.0, 0.0);
    for (i, &v) in r.data().iter().enumerate() {
        let v = v.max(0.0);
        total += v;
        if c.boxes[k].contains(i / CANVAS, i % CANVAS) {
            inside += v;
        }
    }
    inside / total.max(f32::MIN_POSITIVE)
}

fn main() -> Result<()> {
    let model = pretrained::load(Architecture::Multidigit)
        .map_err(|e| Error::invalid("weights", e.to_string()))?;
    let data = digits::load().map_err(|e| Error::invalid("digits", e.to_string()))?;
    let c = DigitPairGenerator::new(data, Split::Test, 1).next();
    let x = Tensor::from_vec(c.image.clone(), &[1, 1, CANVAS, CANVAS])?;
    let rules = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    println!("two-digit image of a {} and a {}", c.labels[0], c.labels[1]);
    let mut grid = Grid::new(112, 6);
    grid.column_titles(["input", "lrp (bdt)", "sglrp"]);
    for k in 0..2 {
        let target = Targets::Class(c.labels[k]);
        let lrp = explain(
            &model,
            &x,
            &target,
            &Method::Lrp {
                composite: rules(),
                seed: Seed::OneHot,
            },
        )?;
        let sglrp = explain(&model, &x, &target, &Method::Sglrp { composite: rules() })?;
        println!(
            "class {}: positive relevance on its own digit: LRP {:.0}%, SGLRP {:.0}%",
            c.labels[k],
            100.0 * mass_in_box(&lrp.relevance, &c, k),
            100.0 * mass_in_box(&sglrp.relevance, &c, k)
        );
        let title = format!("class {}", c.labels[k]);
        let side = CANVAS;
        grid.add_titled_row(
            title,
            vec![
                Cell::Input(c.image.clone(), side, side),
                Cell::relevance(
                    lrp.relevance.into_vec(),
                    side,
                    side,
                    ColorMap::Bwr,
                    lrp.audit.seed_abs.first().copied().unwrap_or(1.0),
                ),
                Cell::relevance(
                    sglrp.relevance.into_vec(),
                    side,
                    side,
                    ColorMap::Bwr,
                    sglrp.audit.seed_abs.first().copied().unwrap_or(1.0),
                ),
            ],
        );
    }
    grid.legend(
        ColorMap::Bwr,
        [
            "red: for the class, blue: against",
            "rules: bounded deep Taylor (zbox, then zplus)",
        ],
    );
    std::fs::create_dir_all("relprop-examples")
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    let path = std::path::Path::new("relprop-examples/07_sglrp.png");
    grid.save(path)
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    println!(
        "wrote {}: LRP's two rows look alike, SGLRP's point at different digits",
        path.display()
    );
    Ok(())
}
