//! Host bindings generated from `sdk/wit`, the single source of truth. Nothing outside
//! the sandbox module uses these types.

/// The `kazi:predicate/predicate` world.
pub mod predicate {
    wasmtime::component::bindgen!({
        path: ["../sdk/wit/host", "../sdk/wit/predicate"],
        world: "kazi:predicate/predicate",
        imports: {
            "kazi:host/exec.run": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// The `kazi:profile/profile` world; shares `kazi:host/log` with the predicate world.
pub mod profile {
    wasmtime::component::bindgen!({
        path: ["../sdk/wit/host", "../sdk/wit/profile"],
        world: "kazi:profile/profile",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "kazi:host/log": super::predicate::kazi::host::log,
        },
    });
}

/// The newest WIT version this host speaks (what `kazi-sdk` builds against).
pub const WIT_VERSION: &str = "0.1.0";
/// The exports a predicate component may have, one per supported version, newest
/// first: a component must export one of them.
pub const PREDICATE_EXPORTS: &[&str] = &["kazi:predicate/evaluator@0.1.0"];
/// The exports a profile component may have, newest first.
pub const PROFILE_EXPORTS: &[&str] = &["kazi:profile/translator@0.1.0"];
