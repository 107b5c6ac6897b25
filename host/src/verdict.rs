//! kazi's own verdict types (in `kazi-core`): what a predicate evaluation produced.
//! Generated WIT types are converted into these at the sandbox edge, so nothing else
//! imports bindings.

pub use kazi_core::verdict::*;
