#!/usr/bin/env bash
# Makes sure the Rust toolchain that rust-toolchain.toml pins is installed, with the
# components and the wasm32-wasip2 target it lists. rustup installs them by itself
# only when RUSTUP_AUTO_INSTALL is not 0; on machines where it is 0 (and on CI),
# nothing else would. Prints one line when it installs something, nothing otherwise.
#
# Usage: bash scripts/toolchain.sh   (the quickstart and .ci/run call it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

channel="$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' rust-toolchain.toml)"
target="wasm32-wasip2"
if [ -z "$channel" ]; then
    echo "error: rust-toolchain.toml names no channel" >&2
    exit 1
fi

if ! command -v rustup >/dev/null 2>&1; then
    # No rustup: a system toolchain can still work if it has the target.
    if rustc --print sysroot >/dev/null 2>&1 &&
        [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
        exit 0
    fi
    echo "error: rustup is not installed and this Rust has no $target target; hint: install rustup (https://rustup.rs), then run this again" >&2
    exit 1
fi

have_toolchain() { rustup toolchain list 2>/dev/null | grep -q "^$channel"; }
have_target() { rustup target list --installed --toolchain "$channel" 2>/dev/null | grep -qx "$target"; }

if have_toolchain && have_target; then
    exit 0
fi
echo "kazi: installing Rust $channel with the $target target (rust-toolchain.toml; RUSTUP_AUTO_INSTALL=${RUSTUP_AUTO_INSTALL:-unset})" >&2
# `rustup toolchain install` with no name installs what rust-toolchain.toml lists;
# the explicit `target add` covers a toolchain that was already there without it.
log="$(mktemp "${TMPDIR:-/tmp}/kazi-rustup.XXXXXX")"
trap 'rm -f "$log"' EXIT
if ! { rustup toolchain install && { have_target || rustup target add --toolchain "$channel" "$target"; }; } >"$log" 2>&1 ||
    ! have_target; then
    cat "$log" >&2
    echo "error: rustup could not install Rust $channel with the $target target; hint: run \`rustup toolchain install $channel --target $target\` and read its message" >&2
    exit 1
fi
