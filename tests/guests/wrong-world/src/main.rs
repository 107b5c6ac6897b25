//! Test guest: a plain `wasi:cli` command component. It exports `wasi:cli/run`,
//! not `kazi:predicate/evaluator`, so the host must refuse to load it.
fn main() {
    println!("i am a command, not a predicate");
}
