//! kazi's loop as a pure state machine, with no I/O, no clock and no WebAssembly
//! runtime in its dependency path: the rules of the loop ([`machine`]) and the pure
//! cores it is made of (budget, flake policy, progress and ratchets, decide, prompt,
//! scope), and the records the host persists. The host crate (`kazi`) performs the
//! effects.

pub mod budget;
pub mod decide;
pub mod flake;
pub mod machine;
pub mod plan;
pub mod progress;
pub mod prompt;
pub mod record;
pub mod scope;
pub mod verdict;

/// sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
