//! Exit codes, one place (SPEC §6). Documented in `kazi --help`.

/// Converged, or every predicate passes.
pub const SUCCESS: u8 = 0;
/// Not converged: stuck, a check failing or erroring, interrupted.
pub const NOT_CONVERGED: u8 = 1;
/// Usage error: bad flags or arguments.
pub const USAGE: u8 = 2;
/// Over budget.
pub const OVER_BUDGET: u8 = 3;
/// The goal or a protected path changed during the run.
pub const TAMPERED: u8 = 4;
/// Invalid goal, profile or predicate: a load-time error.
pub const INVALID: u8 = 5;

/// The text shown at the end of `kazi --help`.
pub const HELP: &str = "\
Exit codes:
  0  converged / all predicates pass
  1  not converged (stuck, check failing, interrupted)
  2  usage error
  3  over budget
  4  tampered (goal or protected path changed)
  5  invalid goal, profile or predicate (load-time error)";
