#!/usr/bin/env node
// Launcher of the ota-ledger CLI. Installed from the package, it runs the compiled JavaScript in
// dist/ (no TypeScript tooling needed). In a checkout, where the TypeScript sources sit beside it,
// it runs them through ts-node so an edit takes effect without a build (types are checked by
// `npm run typecheck`, not here, so start-up stays quick).
"use strict";
const { existsSync } = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const source = path.join(root, "agent", "cli", "main.ts");
let entry;
if (existsSync(source)) {
  if (!existsSync(path.join(root, "typechain-types", "index.ts"))) {
    process.stderr.write("error [NOT_BUILT]: the contracts' typed clients are missing in this checkout: run `npm ci` (or `npx hardhat compile`) first\n");
    process.exit(2);
  }
  require("ts-node").register({ transpileOnly: true, project: path.join(root, "tsconfig.json") });
  entry = path.join(root, "agent", "cli", "main");
} else {
  entry = path.join(root, "dist", "agent", "cli", "main.js");
}
const { main } = require(entry);
// The process's exit code and an unexpected error's report, as for ota-device.
require(path.join(path.dirname(entry), "program")).runAsProcess(main);
