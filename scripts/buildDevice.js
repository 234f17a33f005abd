// The device agent as a device carries it (ADR 0007): agent/cli/deviceMain.ts bundled by esbuild
// into one file with everything it runs (ota-device.js), in dist/device/ beside its launcher
// (ota-device), a package.json and the licences of what it contains, and the same folder packed
// as dist/ota-ledger-device-<version>.tar.gz.
// `npm run build:device` (and `npm run build`, after tsc) runs it; the contracts' typed clients
// must have been generated first (hardhat compile).
//
// The bundle has no native part: secp256k1 runs on ethers' JavaScript curve code on the device
// (agent/crypto/secp256k1.ts loads libsecp256k1 only where node-gyp-build finds its binary, which
// for the bundle means a prebuilds/ folder an integrator puts beside it). The build
// fails if the bundle holds anything a device never runs (FORBIDDEN): a static import chain that
// pulled in the server's, the tracker's or the author's code is to be cut in the sources.
"use strict";
const { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } = require("node:fs");
const { execFileSync } = require("node:child_process");
const path = require("node:path");

const root = path.join(__dirname, "..");
const NAME = "ota-ledger-device";

/** Inputs a device never runs; each one here is a bug in the import graph, not a size question. */
const FORBIDDEN = [
  [
    /node_modules\/(helia|@helia|libp2p|@libp2p|@chainsafe|blockstore-fs|datastore-fs|kubo-rpc-client|ipfs-unixfs|@ipld)\//,
    "IPFS (the firmware server's store)",
  ],
  [/node_modules\/(fastify|@fastify)\//, "Fastify (the server's and the tracker's HTTP)"],
  [/node_modules\/better-sqlite3(-napi)?\//, "better-sqlite3 (the tracker's database)"],
  [/node_modules\/(elliptic|bn\.js)\//, "elliptic (the secp256k1 package's fallback; ethers' curve code is ours)"],
  [/node_modules\/(hardhat|@nomicfoundation|typescript|ts-node)\//, "development tools"],
  [/^agent\/(author|server|tracker|storage)\//, "another agent's code"],
  [/^agent\/cli\/commands\/(?!device\/onDevice\.ts$)/, "an administrator's command (the device's own are commands/device/onDevice.ts)"],
];

/**
 * The device's command, `ota-device`: node on ota-device.js beside it. A young generation of 1 MiB
 * (V8's default grows to 16) keeps an idle agent near 75 MiB of RSS instead of 85-92 (bench:device).
 */
const LAUNCHER = `#!/bin/sh
# OTA Ledger's device agent (ADR 0007): runs ota-device.js beside this file with Node.js 20, 22 or 24.
# --max-semi-space-size=1: a 1 MiB young generation keeps the idle agent's memory low.
here=$(dirname "$(readlink -f "$0")")
exec node --max-semi-space-size=1 "$here/ota-device.js" "$@"
`;

/**
 * Builds <dist>/device/ and its tarball (dist: the checkout's dist/ unless given; the tests build
 * into a folder of their own); returns what the bench and the tests read.
 */
async function buildDevice({ dist = path.join(root, "dist"), quiet = false } = {}) {
  const esbuild = require("esbuild");
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const out = path.join(dist, "device");
  if (!existsSync(path.join(root, "typechain-types", "index.ts"))) {
    throw new Error("typechain-types/ is missing: run `npx hardhat compile` first (npm run build:device does)");
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  const result = await esbuild.build({
    entryPoints: [path.join(root, "agent", "cli", "deviceMain.ts")],
    outfile: path.join(out, "ota-device.js"),
    absWorkingDir: root,
    tsconfig: path.join(root, "tsconfig.json"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20", // the oldest Node the device agent supports (20, 22, 24)
    minify: true,
    keepNames: true, // error class names appear in messages and logs
    legalComments: "none", // the licences are gathered whole into THIRD_PARTY_LICENSES.txt
    banner: { js: "#!/usr/bin/env node" },
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs);
  const found = [];
  for (const input of inputs) for (const [pattern, what] of FORBIDDEN) if (pattern.test(input)) found.push(`${input} (${what})`);
  if (found.length > 0)
    throw new Error(`the device bundle holds what a device never runs:\n  ${found.join("\n  ")}\ncut the import chain that brings it in (see ADR 0007)`);

  chmodSync(path.join(out, "ota-device.js"), 0o755);
  writeFileSync(path.join(out, "ota-device"), LAUNCHER, { mode: 0o755 });
  writeFileSync(
    path.join(out, "package.json"),
    JSON.stringify(
      {
        name: NAME,
        version: pkg.version,
        private: true,
        description: "OTA Ledger's device agent, bundled (./ota-device --help)",
        license: pkg.license,
        type: "commonjs",
        engines: pkg.engines,
      },
      null,
      2,
    ) + "\n",
  );
  writeFileSync(path.join(out, "THIRD_PARTY_LICENSES.txt"), thirdPartyLicences(inputs));
  const licence = path.join(root, "LICENSE");
  if (existsSync(licence)) cpSync(licence, path.join(out, "LICENSE"));
  // What is inside, for a person or a tool to check (kept outside the folder a device gets).
  writeFileSync(path.join(dist, "device-meta.json"), JSON.stringify(result.metafile));

  const tarball = path.join(dist, `${NAME}-${pkg.version}.tar.gz`);
  // Owner and times fixed, so that the tarball depends on the contents only.
  execFileSync("tar", [
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mtime=@0",
    "--sort=name",
    "-czf",
    tarball,
    "-C",
    dist,
    "--transform",
    `s,^device,${NAME},`,
    "device",
  ]);
  const files = readdirSync(out).map((f) => ({ file: f, bytes: statSync(path.join(out, f)).size }));
  if (!quiet) {
    const total = files.reduce((s, f) => s + f.bytes, 0);
    console.log(
      `built ${path.relative(process.cwd(), out)}/ (${files.map((f) => `${f.file} ${f.bytes} B`).join(", ")}; ${total} B in all) and ${path.relative(process.cwd(), tarball)}`,
    );
  }
  return { dir: out, tarball, files, metafile: result.metafile };
}

/** The licence text of every package the bundle holds code of, one after the other. */
function thirdPartyLicences(inputs) {
  const packages = new Map();
  for (const input of inputs) {
    const m = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
    if (m) packages.set(m[1], m[2]);
  }
  const parts = [];
  for (const [dir, name] of [...packages].sort((a, b) => a[1].localeCompare(b[1]))) {
    const pj = JSON.parse(readFileSync(path.join(root, dir, "package.json"), "utf8"));
    const file = readdirSync(path.join(root, dir)).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file
      ? readFileSync(path.join(root, dir, file), "utf8").trim()
      : `(no licence file in the package; its package.json says ${pj.license ?? "nothing"})`;
    parts.push(`${name} ${pj.version} (${pj.license ?? "unknown"})\n\n${text}\n`);
  }
  return `The device agent bundle (ota-device.js) contains code from these packages.\n\n${parts.join("\n" + "-".repeat(72) + "\n\n")}`;
}

module.exports = { buildDevice };

if (require.main === module) {
  buildDevice().catch((err) => {
    console.error(err.message ?? err);
    process.exit(1);
  });
}
