# Shared by the fake agent CLIs in this directory (sourced, not run). POSIX sh.
# See README.md for the environment interface.

set -f # option values and mode lists are never globs

FAKE_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
FAKE_SAMPLES="$FAKE_DIR/samples"

KAZI_FAKE_TOKENS_IN=${KAZI_FAKE_TOKENS_IN:-1200}
KAZI_FAKE_TOKENS_OUT=${KAZI_FAKE_TOKENS_OUT:-300}
KAZI_FAKE_TOKENS_CACHED=${KAZI_FAKE_TOKENS_CACHED:-0}
KAZI_FAKE_COST=${KAZI_FAKE_COST:-0.0123}
KAZI_FAKE_RESULT=${KAZI_FAKE_RESULT:-Done: made the requested change.}

# fake_start NAME ARG... : record the call and pick this call's mode ($FAKE_MODE).
fake_start() {
    FAKE_NAME=$1
    shift
    if [ -n "${KAZI_FAKE_ARGS_FILE:-}" ]; then
        : >"$KAZI_FAKE_ARGS_FILE"
        for arg in "$@"; do
            printf '%s\000' "$arg" >>"$KAZI_FAKE_ARGS_FILE"
        done
    fi
    call=0
    if [ -n "${KAZI_FAKE_CALLS_FILE:-}" ]; then
        if [ -f "$KAZI_FAKE_CALLS_FILE" ]; then
            call=$(wc -l <"$KAZI_FAKE_CALLS_FILE")
        fi
        printf '%s\t%s\n' "$FAKE_NAME" "$PWD" >>"$KAZI_FAKE_CALLS_FILE"
    fi
    # KAZI_FAKE_MODE=a,b,c: call 0 is a, call 1 is b, every later call is c.
    FAKE_MODE=success
    i=0
    old_ifs=$IFS
    IFS=,
    for m in ${KAZI_FAKE_MODE:-success}; do
        FAKE_MODE=$m
        [ "$i" -ge "$call" ] && break
        i=$((i + 1))
    done
    IFS=$old_ifs
}

# fake_stdin: like the real CLIs, read stdin to its end when it is not a terminal
# (an open stdin that never closes hangs them; the host must close it). The text is
# left in $FAKE_STDIN and saved to $KAZI_FAKE_STDIN_FILE when that is set.
fake_stdin() {
    FAKE_STDIN=
    if [ ! -t 0 ]; then
        FAKE_STDIN=$(cat)
    fi
    if [ -n "${KAZI_FAKE_STDIN_FILE:-}" ]; then
        printf '%s' "$FAKE_STDIN" >"$KAZI_FAKE_STDIN_FILE"
    fi
}

# fake_prompt ARG_PROMPT HAVE_ARG: the prompt as the agent received it (the argument,
# else stdin), saved to $KAZI_FAKE_PROMPT_FILE when that is set.
fake_prompt() {
    if [ -n "${KAZI_FAKE_PROMPT_FILE:-}" ]; then
        if [ -n "$2" ]; then
            printf '%s' "$1" >"$KAZI_FAKE_PROMPT_FILE"
        else
            printf '%s' "$FAKE_STDIN" >"$KAZI_FAKE_PROMPT_FILE"
        fi
    fi
}

# fake_work: run $KAZI_FAKE_SCRIPT in the current directory (the workspace), as the
# agent's "work". Its failure is the fake's failure.
fake_work() {
    if [ -n "${KAZI_FAKE_SCRIPT:-}" ]; then
        if ! sh "$KAZI_FAKE_SCRIPT"; then
            printf 'fake %s: KAZI_FAKE_SCRIPT %s failed\n' "$FAKE_NAME" "$KAZI_FAKE_SCRIPT" >&2
            exit 70
        fi
    fi
}

# fake_hang: what a stuck agent does; only the dispatch timeout ends it.
fake_hang() {
    exec sleep "${KAZI_FAKE_HANG_SECS:-3600}"
}

# fake_sample FILE: print a recorded sample.
fake_sample() {
    cat "$FAKE_SAMPLES/$1"
}

# fake_json TEXT: TEXT as a JSON string literal.
fake_json() {
    tab=$(printf '\t')
    cr=$(printf '\r')
    printf '%s' "$1" |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$tab/\\\\t/g" -e "s/$cr/\\\\r/g" |
        awk 'BEGIN { printf "\"" } NR > 1 { printf "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

# fake_garbage: output that is no agent's format.
fake_garbage() {
    printf '%s\n' "Hello! How can I help you today?" "(this is not JSON)"
}

# fake_need_value ARGC OPTION: an option without its value is a usage error, worded
# the way each CLI's argument parser words it.
fake_need_value() {
    if [ "$1" -ge 2 ]; then
        return
    fi
    case $FAKE_NAME in
    codex)
        printf "error: a value is required for '%s' but none was supplied\n" "$2" >&2
        exit 2
        ;;
    opencode)
        printf 'Not enough arguments following: %s\n' "${2#--}" >&2
        exit 1
        ;;
    *)
        printf "error: option '%s' argument missing\n" "$2" >&2
        exit 1
        ;;
    esac
}
