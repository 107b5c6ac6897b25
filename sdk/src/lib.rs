//! `kazi-sdk`: write kazi predicates and agent profiles as WebAssembly components.
//!
//! A predicate is a type implementing [`Predicate`] exported with
//! [`export_predicate!`]; a profile is a type implementing [`Profile`] exported with
//! [`export_profile!`] (feature `profile`). Build either with
//! `cargo build --release --target wasm32-wasip2`. The WIT files in `sdk/wit/` are the
//! contract; this crate converts their generated types into the plain Rust types
//! below, so authors never touch bindings.
//!
//! A config is one Rust type (`#[derive(Deserialize, JsonSchema)]`): its JSON Schema,
//! the checks kazi runs when it loads a goal ([`ConfigError`]s with a JSON pointer,
//! shown at the goal file's line and column) and the parsing at evaluation all come
//! from it. See [`config`].
//!
//! A crate is either a predicate or a profile: the features `predicate` (default)
//! and `profile` each embed one world in the component. Without either, only the
//! config and schema helpers remain (kazi's host uses them to check goal files).

extern crate self as kazi_sdk;

pub mod config;
mod error;
pub mod json_path;
#[cfg(any(feature = "predicate", feature = "profile"))]
pub mod log;
pub mod schema;
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

pub use config::{Config, ConfigError, ConfigType, unknown_key_error};
pub use error::{Error, Result};
pub use schemars;
pub use serde;

/// Everything an author needs, in one `use`.
pub mod prelude {
    pub use crate::config::{Config, ConfigError, ConfigType};
    pub use crate::error::{Error, Result};
    #[cfg(feature = "predicate")]
    pub use crate::export_predicate;
    #[cfg(feature = "profile")]
    pub use crate::export_profile;
    #[cfg(any(feature = "predicate", feature = "profile"))]
    pub use crate::log;
    #[cfg(feature = "predicate")]
    pub use crate::predicate::{
        Capabilities, Context, Description, Diagnostic, Outcome, Predicate, Verdict, Workspace,
        check_config, exec, kv,
    };
    #[cfg(feature = "profile")]
    pub use crate::profile::{
        Agent, Invocation, Profile, ProfileDescription, Report, Request, Tokens, check_options,
    };
    pub use crate::text;
    pub use schemars::JsonSchema;
    pub use serde::Deserialize;
    pub use serde_json::{self, Value, json};
}

#[cfg(any(feature = "predicate", feature = "profile"))]
#[doc(hidden)]
pub mod __rt {
    pub use wit_bindgen;
}

#[cfg(feature = "predicate")]
#[doc(hidden)]
pub mod __predicate_bindings {
    wit_bindgen::generate!({
        path: "wit",
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
        path: "wit",
        world: "kazi:profile/profile",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_profile_world",
        default_bindings_module: "kazi_sdk::__profile_bindings",
        runtime_path: "kazi_sdk::__rt::wit_bindgen::rt",
    });
}
