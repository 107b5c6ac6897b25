#!/usr/bin/env bash
# The quickstart: copy the example project to a scratch directory, build kazi and
# drive the scripted fixer until the tests pass. Leaves the repository untouched,
# so it can be run again and again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/kazi-quickstart.XXXXXX")"
cp -R "$here/project/." "$work/"
echo "quickstart workspace: $work" >&2
if [ -n "${KAZI_BIN:-}" ]; then
    exec "$KAZI_BIN" run "$work/kazi.toml" "$@"   # an already-built kazi (the tests use this)
fi
bash "$root/scripts/toolchain.sh"   # RUSTUP_AUTO_INSTALL=0 machines lack the wasm target
exec cargo run --quiet --manifest-path "$root/Cargo.toml" -p kazi -- run "$work/kazi.toml" "$@"
