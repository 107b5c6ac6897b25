//! The records of a run (in `kazi-core`): what the loop decides and persists. Shared
//! by the loop, the read-model and the CLI reports.

pub use kazi_core::record::*;
