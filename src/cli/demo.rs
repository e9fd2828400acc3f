//! `relprop demo`: the one-minute tour, from embedded weights and bundled digits only.

use super::error::{CliError, CliResult};
use super::eval::print_discrimination;
use relprop::core::{Error, Tensor};
use relprop::evaluation::{discrimination, method};
use relprop::explain::heatmap::{Cell, ColorMap, Grid};
use relprop::explain::{explain, Targets};
use relprop::zoo::digits::{self, Split};
use relprop::zoo::pairs::{DigitPairGenerator, CANVAS};
use relprop::zoo::{pretrained, Architecture, Model};
use std::path::Path;
use std::time::Instant;

/// The figure's columns after the input.
const FIGURE_METHODS: [&str; 4] = ["gradient", "lrp-epsilon-plus", "clrp1", "sglrp"];
/// The methods of the demo's discrimination table.
const TABLE_METHODS: [&str; 5] = [
    "gradient",
    "lrp-epsilon-plus",
    "lrp-bounded-deep-taylor",
    "clrp1",
    "sglrp",
];

fn load(arch: Architecture) -> CliResult<Model> {
    pretrained::load(arch)
        .map_err(|e| CliError::internal(format!("embedded weights of {arch}: {e}")))
}

/// One figure row: the input, then one heatmap per method for `target`; a map whose seed
/// is near zero (SGLRP on a saturated softmax) is drawn faint rather than at full colour.
fn row(model: &Model, x: &Tensor, target: usize, side: usize) -> relprop::core::Result<Vec<Cell>> {
    let mut cells = vec![Cell::Input(x.data().to_vec(), side, side)];
    for name in FIGURE_METHODS {
        let a = explain(model, x, &Targets::Class(target), &method(name)?)?;
        let map = a.relevance.data().to_vec();
        let seed_abs = a.audit.seed_abs.first().copied().unwrap_or(f64::INFINITY);
        cells.push(Cell::relevance(map, side, side, ColorMap::Bwr, seed_abs));
    }
    Ok(cells)
}

/// Writes `<out>/demo.png`, prints one audit and a discrimination table on 200 composites.
pub fn run(out: &Path) -> CliResult {
    let start = Instant::now();
    std::fs::create_dir_all(out).map_err(|e| CliError::input(format!("{}: {e}", out.display())))?;
    let data = digits::load().map_err(|e| CliError::internal(e.to_string()))?;
    let (lenet, multi) = (load(Architecture::Lenet5)?, load(Architecture::Multidigit)?);
    let mut grid = Grid::new(112, 6);
    grid.column_titles(["input", "gradient", "lrp eps-plus", "clrp1", "sglrp"]);

    // Single digits: the first test digit of a few classes, explained for their own class.
    let test = data.test_indices();
    for class in [0, 3, 7] {
        let i = *test
            .iter()
            .find(|&&i| data.label(i) == class)
            .ok_or_else(|| CliError::internal("missing class"))?;
        let x = Tensor::from_vec(data.image_f32(i), &[1, 1, 28, 28])?;
        grid.add_titled_row(format!("digit {class}"), row(&lenet, &x, class, 28)?);
    }
    // Composites: each explained once for each of its two classes.
    let mut gen = DigitPairGenerator::new(data, Split::Test, 11);
    let composites = gen.batch(3);
    for c in &composites {
        let x = Tensor::from_vec(c.image.clone(), &[1, 1, CANVAS, CANVAS])?;
        for &label in &c.labels {
            let title = format!("{}+{}: {label}", c.labels[0], c.labels[1]);
            grid.add_titled_row(title, row(&multi, &x, label, CANVAS)?);
        }
    }
    grid.legend(
        ColorMap::Bwr,
        [
            "red: for the explained class, blue: against",
            "rows: digit (lenet5); pair a+b: class explained (multidigit)",
        ],
    );
    let figure = out.join("demo.png");
    grid.save(&figure)
        .map_err(|e| CliError::input(format!("{}: {e}", figure.display())))?;
    outln!("wrote {}", figure.display());
    outln!("  rows 1-3: test digits (lenet5); rows 4-9: two-digit composites (multidigit), each explained for both classes");
    outln!(
        "  columns: input | {} (red: for the class, blue: against)",
        FIGURE_METHODS.join(" | ")
    );
    let labels: Vec<String> = composites
        .iter()
        .map(|c| format!("{}+{}", c.labels[0], c.labels[1]))
        .collect();
    outln!("  composites: {}", labels.join(", "));

    // The audit of one explanation: SGLRP of the first composite's first class.
    let c = &composites[0];
    let x = Tensor::from_vec(c.image.clone(), &[1, 1, CANVAS, CANVAS])?;
    let a = explain(&multi, &x, &Targets::Class(c.labels[0]), &method("sglrp")?)?;
    outln!();
    out!("{}", a.audit);

    outln!();
    outln!("class discrimination on 200 test composites (relprop eval discrimination for the full table):");
    let pb = relprop::nn::progress::Progress::new(Some(200), false, "composites");
    let rows = discrimination(&multi, data, 200, 1, &TABLE_METHODS, |d| pb.set_position(d))
        .map_err(|e: Error| CliError::internal(e.to_string()))?;
    pb.finish();
    print_discrimination(&rows)?;
    outln!(
        "\ndone in {:.1} s; files are in {}",
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
