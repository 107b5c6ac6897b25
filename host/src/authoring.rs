//! Authoring: getting from a repository to a goal, and from an idea to a predicate.
//! [`init`] writes a starter goal for the stack a repository uses (`kazi init`);
//! [`scaffold`] creates and builds predicate crates (`kazi predicate new`, `build`)
//! with a copy of the [`sdk`] the binary carries;
//! [`propose`] has an agent draft a goal from an idea (`kazi propose`).

pub mod init;
pub mod propose;
pub mod scaffold;
pub mod sdk;
