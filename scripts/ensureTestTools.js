// npm test's pretest: makes sure the tools the tests drive for real are here, so that `npm test`
// works on a fresh clone after `npm ci`:
//  - the js-ipfs test daemon (tools/ipfs-daemon, its own lockfile): installed when missing (~40 s, once);
//  - Debian's Chromium for the dashboard's page tests (playwright cannot download browsers here):
//    installed with apt-get when missing and this runs as root, otherwise the command to run is printed.
const { existsSync } = require("node:fs");
const { execFileSync } = require("node:child_process");
const path = require("node:path");

const dir = path.join(__dirname, "..", "tools", "ipfs-daemon");
if (!existsSync(path.join(dir, "node_modules", "ipfs", "package.json"))) {
  console.log("installing the js-ipfs test daemon in tools/ipfs-daemon (npm ci, once)");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  execFileSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
}

const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (root && existsSync("/usr/bin/apt-get")) {
    console.log("installing Debian's chromium for the dashboard tests (apt-get, once)");
    execFileSync("apt-get", ["update"], { stdio: "inherit" });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit" });
  } else {
    console.error(`the dashboard tests drive ${CHROMIUM}, which is missing: install it with \`sudo apt-get install -y chromium\`, then run npm test again`);
    process.exit(1);
  }
}
