//! `kazi-sdk`: write kazi predicates and agent profiles as WebAssembly components.
//!
//! A predicate is a type implementing [`Predicate`] exported with
//! [`export_predicate!`]; a profile is a type implementing [`Profile`] exported with
//! [`export_profile!`] (feature `profile`). Build either with
//! `cargo build --release --target wasm32-wasip2`. The WIT files in `sdk/wit/` are the
//! contract; this crate converts their generated types into the plain Rust types
//! below, so authors never touch bindings.
//!
//! A crate is either a predicate or a profile: the features `predicate` (default)
//! and `profile` each embed one world in the component.

extern crate self as kazi_sdk;

mod error;
pub mod json_path;
pub mod log;
pub mod text;

#[cfg(feature = "predicate")]
mod predicate;
#[cfg(feature = "predicate")]
pub use predicate::*;

#[cfg(feature = "profile")]
pub mod agent_output;
#[cfg(feature = "profile")]
mod profile;
#[cfg(feature = "profile")]
pub use profile::*;
#[cfg(feature = "profile")]
pub mod request;

pub use error::{Error, Result};

/// Everything an author needs, in one `use`.
pub mod prelude {
    pub use crate::error::{Error, Result};
    #[cfg(feature = "predicate")]
    pub use crate::export_predicate;
    #[cfg(feature = "profile")]
    pub use crate::export_profile;
    pub use crate::log;
    #[cfg(feature = "predicate")]
    pub use crate::predicate::{
        Capabilities, Config, Context, Description, Diagnostic, Outcome, Predicate, Verdict,
        Workspace, exec, kv,
    };
    #[cfg(feature = "profile")]
    pub use crate::profile::{Invocation, Profile, ProfileDescription, Report, Request, Tokens};
    pub use crate::text;
    pub use serde_json::{self, Value, json};
}

#[doc(hidden)]
pub mod __rt {
    pub use wit_bindgen;
}

#[cfg(feature = "predicate")]
#[doc(hidden)]
pub mod __predicate_bindings {
    wit_bindgen::generate!({
        path: ["wit/host", "wit/predicate"],
        world: "kazi:predicate/predicate",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_predicate_world",
        default_bindings_module: "kazi_sdk::__predicate_bindings",
        runtime_path: "kazi_sdk::__rt::wit_bindgen::rt",
    });
}

#[cfg(feature = "profile")]
#[doc(hidden)]
pub mod __profile_bindings {
    wit_bindgen::generate!({
        path: ["wit/host", "wit/profile"],
        world: "kazi:profile/profile",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_profile_world",
        default_bindings_module: "kazi_sdk::__profile_bindings",
        runtime_path: "kazi_sdk::__rt::wit_bindgen::rt",
    });
}
