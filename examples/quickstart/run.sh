#!/usr/bin/env bash
# The quickstart: copy the example project to a scratch git repository, build kazi
# and drive the scripted fixer (in a task worktree) until the tests pass; the fix
# lands on a branch. Leaves this repository untouched, so it can be run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/kazi-quickstart.XXXXXX")"
cp -R "$here/project/." "$work/"
# A git repository, so the agent gets a task worktree and the fix lands on a branch
# (without git, kazi works in place and says so).
if command -v git >/dev/null 2>&1; then
    git -C "$work" init -q -b main
    git -C "$work" add -A
    git -C "$work" -c user.name=quickstart -c user.email=quickstart@example.com \
        commit -q -m "the calculator, with a bug"
fi
echo "quickstart workspace: $work" >&2
if [ -n "${KAZI_BIN:-}" ]; then
    exec "$KAZI_BIN" run "$work/kazi.toml" "$@"   # an already-built kazi (the tests use this)
fi
bash "$root/scripts/toolchain.sh"   # RUSTUP_AUTO_INSTALL=0 machines lack the wasm target
exec cargo run --quiet --manifest-path "$root/Cargo.toml" -p kazi -- run "$work/kazi.toml" "$@"
