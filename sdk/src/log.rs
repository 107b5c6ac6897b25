//! Logging into the host's log (shown with `kazi -v`).

#[cfg(feature = "predicate")]
use crate::__predicate_bindings::kazi::host::log as imp;
#[cfg(all(feature = "profile", not(feature = "predicate")))]
use crate::__profile_bindings::kazi::host::log as imp;

#[cfg(any(feature = "predicate", feature = "profile"))]
fn emit(level: imp::Level, message: &str) {
    imp::log(level, message);
}

/// Log at debug level.
#[cfg(any(feature = "predicate", feature = "profile"))]
pub fn debug(message: &str) {
    emit(imp::Level::Debug, message);
}

/// Log at info level.
#[cfg(any(feature = "predicate", feature = "profile"))]
pub fn info(message: &str) {
    emit(imp::Level::Info, message);
}

/// Log at warn level.
#[cfg(any(feature = "predicate", feature = "profile"))]
pub fn warn(message: &str) {
    emit(imp::Level::Warn, message);
}
