// A kazi predicate in JavaScript: the workspace's git tree is clean (no changes,
// no untracked files). It runs `git status --porcelain` through kazi's `exec`
// import, so a goal must grant `git` (`[predicate.allow] exec = ["git"]`).
//
// Built into a WebAssembly component with componentize-js against kazi's WIT; see
// README.md. The exported interface `evaluator` is this module's `evaluator` object.

import { run } from "kazi:host/exec@0.1.0";

const SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    ignore: {
      description: "Path prefixes whose changes do not count, such as \"target/\".",
      type: "array",
      items: { type: "string" },
    },
  },
};

const KEYS = Object.keys(SCHEMA.properties);

// Every problem with the config, as kazi's config-error records.
function problems(config) {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    return [{ pointer: "", message: "must be a table of keys", hint: undefined }];
  }
  const out = [];
  for (const key of Object.keys(config)) {
    if (!KEYS.includes(key)) {
      out.push({ pointer: `/${key}`, message: "is not a known key", hint: `known keys: ${KEYS.join(", ")}` });
    }
  }
  const ignore = config.ignore;
  if (ignore !== undefined) {
    if (!Array.isArray(ignore)) {
      out.push({ pointer: "/ignore", message: "must be a list of path prefixes", hint: 'ignore = ["target/"]' });
    } else {
      ignore.forEach((p, i) => {
        if (typeof p !== "string" || p === "") {
          out.push({ pointer: `/ignore/${i}`, message: "must be a non-empty string", hint: undefined });
        }
      });
    }
  }
  return out;
}

function verdict(outcome, summary, details = "", metrics = []) {
  return {
    outcome,
    evidence: { summary, details, diagnostics: [], score: undefined, metrics },
  };
}

export const evaluator = {
  describe() {
    return {
      name: "git-clean",
      version: "0.1.0",
      summary: "the workspace's git tree has no changes and no untracked files",
      configSchema: JSON.stringify(SCHEMA),
      capabilities: { exec: ["git"], net: [], env: [], fsWrite: false },
    };
  },

  // Throwing an array of config errors is how componentize-js returns `err`.
  validate(config) {
    const found = problems(JSON.parse(config));
    if (found.length > 0) {
      throw found;
    }
  },

  evaluate(config, cx) {
    const ignore = JSON.parse(config).ignore ?? [];
    let output;
    try {
      output = run({
        program: "git",
        args: ["status", "--porcelain", "--untracked-files=all"],
        cwd: undefined,
        env: [],
        timeoutMs: 30000n,
      });
    } catch (e) {
      const why = e && e.payload !== undefined ? `${e.tag}: ${e.payload}` : String(e);
      return verdict("error", `cannot run git: ${why}`);
    }
    const stdout = new TextDecoder().decode(output.stdout);
    if (output.status !== 0) {
      const stderr = new TextDecoder().decode(output.stderr).trim();
      return verdict("error", `git status exited ${output.status}: ${stderr}`);
    }
    const changed = stdout
      .split("\n")
      .filter((line) => line.length > 3)
      .map((line) => line.slice(3))
      .filter((path) => !ignore.some((prefix) => path.startsWith(prefix)));
    const metrics = [{ name: "changed_files", value: changed.length }];
    if (changed.length > 0) {
      return verdict(
        "fail",
        `${changed.length} changed or untracked file(s): ${changed.slice(0, 5).join(", ")}`,
        changed.join("\n"),
        metrics,
      );
    }
    return verdict("pass", "the git tree is clean", "", metrics);
  },
};
