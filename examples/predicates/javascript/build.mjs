// Build app.js into a kazi predicate component with componentize-js (the engine
// behind `jco componentize`):  node build.mjs [WIT_DIR] [OUT]
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const witPath = process.argv[2] ?? "../../../sdk/wit";
const out = process.argv[3] ?? "git-clean.wasm";
const { component } = await componentize({
  sourcePath: "app.js",
  witPath,
  worldName: "kazi:predicate/predicate",
  // What a predicate has no use for; kazi does not provide wasi:http to it unless granted.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
console.log(`built ${out}: ${component.length} bytes`);
