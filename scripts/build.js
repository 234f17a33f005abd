// npm run build's second half (the contracts are compiled and typechain generated before it):
// compiles the agents, the CLI and the contracts' typed clients to dist/ with tsc, and copies the
// files they read at run time beside them; then bundles the device agent into dist/device/
// (scripts/buildDevice.js). A clean dist/ every time, so nothing stale ships.
"use strict";
const { cpSync, rmSync, existsSync } = require("node:fs");
const { execFileSync } = require("node:child_process");
const path = require("node:path");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");

if (!existsSync(path.join(root, "typechain-types", "index.ts"))) {
  console.error("typechain-types/ is missing: run `npx hardhat compile` first (npm run build does)");
  process.exit(1);
}
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });

// Files the agents read at run time that tsc does not emit.
const ASSETS = [["agent/tracker/dashboard", "agent/tracker/dashboard"]];
for (const [from, to] of ASSETS) cpSync(path.join(root, from), path.join(dist, to), { recursive: true });
console.log(`built ${path.relative(process.cwd(), dist) || "dist"}/`);

require("./buildDevice")
  .buildDevice()
  .catch((err) => {
    console.error(err.message ?? err);
    process.exit(1);
  });
