#!/bin/sh
# A scripted "agent" for the quickstart: it reads kazi's prompt (on stdin and in
# $KAZI_PROMPT_FILE) and applies the one fix a person would make. Real runs use
# `profile = "claude"` (or opencode, codex) instead.
set -eu
grep -q "calc" "$KAZI_PROMPT_FILE" || { echo "the prompt does not mention the failing tests" >&2; exit 1; }
# Rewrite in place (not `mv`), so calc.sh keeps its mode.
sed 's/\$(( \$2 - \$3 ))/$(( $2 + $3 ))/' calc.sh > calc.sh.new && cat calc.sh.new > calc.sh && rm calc.sh.new
echo "fixed add in calc.sh: it subtracted instead of adding"
