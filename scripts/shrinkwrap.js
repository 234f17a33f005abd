// npm pack's prepack/postpack: the packed tarball carries the lockfile as npm-shrinkwrap.json, so
// `npm install -g ./ota-ledger-<version>.tgz` installs exactly the tested dependency tree (the
// checkout keeps package-lock.json only; a shrinkwrap there would take its place for npm ci).
"use strict";
const { copyFileSync, rmSync } = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const shrinkwrap = path.join(root, "npm-shrinkwrap.json");
const action = process.argv[2];
if (action === "create") copyFileSync(path.join(root, "package-lock.json"), shrinkwrap);
else if (action === "remove") rmSync(shrinkwrap, { force: true });
else {
  console.error("usage: node scripts/shrinkwrap.js create|remove");
  process.exit(2);
}
