//! Lesson 4: training a LeNet-5 on the bundled digits.
//!
//! A training step is: record the forward pass on a fresh tape (training mode), record the
//! loss, walk back with the exact derivative, and let the optimizer move every parameter
//! by its gradient, which it finds by the parameter's name on the tape.
//! Run: `cargo run --release --example 04_train_lenet` (a few seconds per epoch).

use relprop::core::{Result, Rng, Tape, Tensor};
use relprop::nn::train::{evaluate, Labels};
use relprop::nn::{Adam, Gradients, Mode, Module, Optimizer};
use relprop::zoo::digits;
use relprop::zoo::Architecture;

fn main() -> Result<()> {
    let data =
        digits::load().map_err(|e| relprop::core::Error::invalid("digits", e.to_string()))?;
    let mut model = Architecture::Lenet5.build(0);
    let mut opt = Adam::new(1e-3);
    let mut rng = Rng::new(0);
    let mut order = data.train_indices();

    for epoch in 1..=3 {
        rng.shuffle(&mut order);
        let mut last_loss = 0.0;
        for batch in order.chunks(64) {
            let (pixels, labels) = data.batch_f32(batch);
            let x = Tensor::from_vec(pixels, &[batch.len(), 1, 28, 28])?;

            let mut tape = Tape::new(); // parameters are recorded as leaves that want gradients
            let input = tape.constant(x);
            let logits = model.forward(&mut tape, input, Mode::Train)?;
            let loss = Labels::Classes(labels).loss(&mut tape, logits)?;
            last_loss = tape.value(loss)?.item()?;

            let signals = tape.grad(loss)?; // d loss / d every node
            let grads = Gradients::from_tape(&tape, &signals)?; // keyed by parameter name
            opt.step(model.params_mut(), &grads)?;
        }
        let (test_x, test_y) = relprop::zoo::training::test_digits()?;
        let acc = evaluate(&model, &test_x, &test_y, 250)?;
        println!(
            "epoch {epoch}: last batch loss {last_loss:.3}, test accuracy {:.2}%",
            100.0 * acc
        );
    }
    let recipe = relprop::zoo::training::recipe(Architecture::Lenet5);
    println!(
        "(the zoo's recipe adds augmentation, a cosine decay of the learning rate and {} epochs: `relprop train lenet5`)",
        recipe.epochs
    );
    Ok(())
}
