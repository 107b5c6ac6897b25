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

/// The exit code of a run that ended with `status` (the one place outcomes map to
/// codes; `kazi check` maps its pass/fail/error here too).
pub fn of_run(status: crate::run::RunStatus) -> u8 {
    use crate::run::RunStatus;
    match status {
        RunStatus::Converged => SUCCESS,
        RunStatus::OverBudget => OVER_BUDGET,
        RunStatus::Tampered => TAMPERED,
        RunStatus::Invalid => INVALID,
        RunStatus::Running | RunStatus::Stuck | RunStatus::Interrupted | RunStatus::Error => {
            NOT_CONVERGED
        }
    }
}

/// The exit code of `kazi check` for its overall verdict.
pub fn of_check(all_pass: bool) -> u8 {
    if all_pass { SUCCESS } else { NOT_CONVERGED }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunStatus;

    #[test]
    fn every_status_has_its_code() {
        let codes: Vec<(RunStatus, u8)> = RunStatus::ALL.iter().map(|s| (*s, of_run(*s))).collect();
        assert_eq!(
            codes,
            vec![
                (RunStatus::Running, NOT_CONVERGED),
                (RunStatus::Converged, SUCCESS),
                (RunStatus::Stuck, NOT_CONVERGED),
                (RunStatus::OverBudget, OVER_BUDGET),
                (RunStatus::Tampered, TAMPERED),
                (RunStatus::Interrupted, NOT_CONVERGED),
                (RunStatus::Invalid, INVALID),
                (RunStatus::Error, NOT_CONVERGED),
            ]
        );
    }
}
