// npm test's pretest: installs the js-ipfs test daemon (tools/ipfs-daemon, its own lockfile) when
// it is missing, so that `npm test` works on a fresh clone after `npm ci`. About 40 s, once.
const { existsSync } = require("node:fs");
const { execFileSync } = require("node:child_process");
const path = require("node:path");

const dir = path.join(__dirname, "..", "tools", "ipfs-daemon");
if (!existsSync(path.join(dir, "node_modules", "ipfs", "package.json"))) {
  console.log("installing the js-ipfs test daemon in tools/ipfs-daemon (npm ci, once)");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  execFileSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
}
