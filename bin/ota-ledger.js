#!/usr/bin/env node
// Launcher of the ota-ledger CLI: runs the TypeScript sources through ts-node (types are checked
// by `npm run typecheck`, not here, so start-up stays quick).
"use strict";
const path = require("node:path");

const root = path.join(__dirname, "..");
require("ts-node").register({ transpileOnly: true, project: path.join(root, "tsconfig.json") });
const { main } = require(path.join(root, "agent", "cli", "main"));

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`error [UNEXPECTED]: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
