//! The `relprop` command-line tool.

fn main() {
    println!(
        "relprop {}: the command-line tool grows with the next issues.",
        env!("CARGO_PKG_VERSION")
    );
    println!("Try the course: cargo run --release --example 02_tape");
}
