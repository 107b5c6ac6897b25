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

/// The WIT version this host speaks, for all three packages.
pub const WIT_VERSION: &str = "0.1.0";
/// The export a predicate component must have.
pub const PREDICATE_EXPORT: &str = "kazi:predicate/evaluator@0.1.0";
/// The export a profile component must have.
pub const PROFILE_EXPORT: &str = "kazi:profile/translator@0.1.0";
