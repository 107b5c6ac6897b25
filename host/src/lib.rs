//! kazi: the outer loop for coding agents. This crate holds the whole host; the
//! `kazi` binary is a thin shell over [`cli::main`].

pub mod agent;
pub mod authoring;
pub mod builtins;
pub mod cli;
pub mod exit;
pub mod goal;
pub mod guardian;
pub mod isolation;
pub mod observe;
pub mod pkg;
pub mod process;
pub mod reconcile;
pub mod run;
pub mod sandbox;
pub mod store;
pub mod text;
pub mod verdict;
