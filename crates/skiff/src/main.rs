//! `skiff`: the binary. CLI and wiring only; every behaviour lives in a library crate.
fn main() {
    println!("skiff");
}
