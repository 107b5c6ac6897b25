"""A kazi predicate in Python: no listed file is longer than `max_lines` lines.

Built into a WebAssembly component with componentize-py against kazi's WIT (see
README.md). It exports `kazi:predicate/evaluator@0.2.0`: `describe`, `validate`
(called once when a goal is loaded, so a bad config is a load error with the goal
file's line and column) and `evaluate` (once per observation, in a fresh instance,
with the workspace mounted read-only at /workspace).
"""

import json
import os

import wit_world
from componentize_py_types import Err
from wit_world.exports import evaluator
from wit_world.imports import types

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["files"],
    "properties": {
        "files": {
            "description": "Workspace-relative files to measure.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
        },
        "max_lines": {
            "description": "The most lines a file may have (default 500).",
            "type": "integer",
            "minimum": 1,
        },
    },
}

KEYS = list(SCHEMA["properties"])


def close_key(word):
    """The known key `word` is most likely a typo of, if any."""

    def distance(a, b):
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]

    best = min(KEYS, key=lambda k: distance(word, k))
    return best if distance(word, best) <= max(2, len(best) // 3) else None


def problems(config):
    """Every problem with `config`, as kazi's config-error records."""
    out = []
    if not isinstance(config, dict):
        return [evaluator.ConfigError("", "must be a table of keys", None)]
    for key in config:
        if key not in KEYS:
            close = close_key(key)
            hint = f"did you mean `{close}`?" if close else "known keys: " + ", ".join(KEYS)
            out.append(evaluator.ConfigError(f"/{key}", "is not a known key", hint))
    files = config.get("files")
    if files is None:
        out.append(evaluator.ConfigError("/files", "is required", "files = [\"src/app.py\"]"))
    elif not isinstance(files, list) or not files:
        out.append(evaluator.ConfigError("/files", "must be a non-empty list of paths", None))
    else:
        for i, f in enumerate(files):
            if not isinstance(f, str):
                out.append(evaluator.ConfigError(f"/files/{i}", "must be a string", None))
            elif f.startswith("/") or ".." in f.split("/"):
                out.append(
                    evaluator.ConfigError(
                        f"/files/{i}",
                        f"{json.dumps(f)} leaves the workspace",
                        "write a path relative to the workspace",
                    )
                )
    max_lines = config.get("max_lines", 500)
    if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
        out.append(
            evaluator.ConfigError(
                "/max_lines", f"must be a positive integer, found {json.dumps(max_lines)}", None
            )
        )
    return out


def verdict(outcome, summary, details="", metrics=()):
    return types.Verdict(
        outcome,
        types.Evidence(
            summary,
            details,
            [],
            None,
            [types.Metric(name, float(value)) for name, value in metrics],
        ),
    )


class Evaluator(wit_world.exports.Evaluator):
    def describe(self):
        return evaluator.Description(
            name="max-lines",
            version="0.1.0",
            summary="no listed file is longer than max_lines lines",
            config_schema=json.dumps(SCHEMA),
            capabilities=evaluator.Capabilities(exec=[], net=[], env=[], fs_write=False),
        )

    def validate(self, config):
        found = problems(json.loads(config))
        if found:
            raise Err(found)

    def evaluate(self, config, cx):
        config = json.loads(config)
        max_lines = config.get("max_lines", 500)
        too_long = []
        longest = 0
        for rel in config["files"]:
            try:
                with open(os.path.join(cx.workspace, rel), encoding="utf-8", errors="replace") as f:
                    n = sum(1 for _ in f)
            except OSError as e:
                return verdict(types.Outcome.ERROR, f"cannot read {rel}: {e.strerror}")
            longest = max(longest, n)
            if n > max_lines:
                too_long.append(f"{rel} has {n} lines")
        metrics = [("longest", longest)]
        if too_long:
            return verdict(
                types.Outcome.FAIL,
                f"{len(too_long)} file(s) longer than {max_lines} lines: " + ", ".join(too_long),
                metrics=metrics,
            )
        return verdict(
            types.Outcome.PASS,
            f"{len(config['files'])} file(s) within {max_lines} lines (longest: {longest})",
            metrics=metrics,
        )
