/**
 * The device agent as a device carries it (issue 14, ADR 0007): the bundle's bytes on disk, the
 * idle memory of one `device run` process and its cold start, beside the same figures for the
 * full checkout (ts-node) and for the tsc output that `npm pack` ships (dist/, or an install given
 * with --installed).
 *
 *   npm run bench:device                       the bundle (its launcher, plain node, libsecp256k1 beside it), the checkout, dist/
 *   npm run bench:device -- --runs 9           cold starts per variant (default 7; or BENCH_DEVICE_RUNS)
 *   npm run bench:device -- --idle-processes 5 processes whose idle RSS is sampled (default 3)
 *   npm run bench:device -- --installed <dir>  also an `npm install -g --prefix <dir>` of the packed package
 *   npm run bench:device -- --node-flags "--max-semi-space-size=1"   also the bundle under these node options (repeatable)
 *   npm run bench:device -- --json             one JSON document (or BENCH_JSON=1)
 *
 * Cold start: from the spawn of the process to its line "running 1 device agent(s)", which
 * `device run` prints once DeviceRunner.start has returned: the configuration read, the chain
 * opened and checked (chain id, contract code, the fleet's registry), the agent's slots opened,
 * and the first ledger check done (the ledger watcher's first poll: the registry's events from
 * the checkpoint to the head read and handled, and the head block fetched). The median of --runs
 * starts; each run is stopped with SIGTERM and waited for before the next (the data folder, with
 * its checkpoint, is kept: a device restarting).
 * Idle RSS: VmRSS from /proc/<pid>/status, sampled every 200 ms for 5 s, starting 3 s after that
 * line, while the agent follows the ledger (the chain mines a block a second); the median of the
 * samples, for each of --idle-processes processes (default 3), and the median, min and max of
 * those. RssAnon beside it: the part that is not the Node binary and libraries mapped from disk.
 * Bytes on disk: the files of the folder an integrator copies (and the tarball it comes in).
 * Curve: the secp256k1 operations a device does, on ethers' JavaScript and on libsecp256k1.
 *
 * Goals (issue 14): bundle and native parts <= 10 MiB, idle RSS <= 80 MiB, cold start <= 1.5 s,
 * for the bundle as a device runs it: its launcher, `ota-device` (node --max-semi-space-size=1).
 * Everything listens on 127.0.0.1; the chain, the processes and the temporary folders are removed
 * at the end, on an error and on Ctrl-C.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { JsonRpcProvider, NonceManager, Network, SigningKey, Wallet, encodeBytes32String, getBytes, keccak256, toUtf8Bytes } from "ethers";
import { startLocalChain, type LocalChain } from "../scripts/lib/localChain";
import { buildDevice } from "../scripts/buildDevice";
import { freePort } from "../scripts/lib/ports";
import { median, round } from "./lib/measure";
import { checkoutVariables } from "../scripts/lib/checkoutEnv";
import { FleetRegistry__factory, UpdatePolicies__factory, UpdateRegistry__factory } from "../agent/chain/contracts";
import { deploymentPath, writeDeployment } from "../agent/chain/deployment";
import { javascriptCurve, nativeSecp256k1, type Curve } from "../agent/crypto/secp256k1";

const ROOT = path.join(__dirname, "..");
const MiB = 1024 * 1024;
const GOALS = { bytesMiB: 10, idleRssMiB: 80, coldStartMs: 1500 };
const argv = process.argv.slice(2);
const json = argv.includes("--json") || process.env.BENCH_JSON === "1";
const arg = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const RUNS = Number(arg("--runs") ?? process.env.BENCH_DEVICE_RUNS ?? 7);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a whole number of at least 1`);
const INSTALLED = arg("--installed");
const IDLE_PROCESSES = Number(arg("--idle-processes") ?? process.env.BENCH_DEVICE_IDLE_PROCESSES ?? 3);
if (!Number.isInteger(IDLE_PROCESSES) || IDLE_PROCESSES < 1) throw new Error(`--idle-processes must be a whole number of at least 1`);
/** Extra variants: the bundle run with these node options (e.g. "--max-semi-space-size=1"), one variant per --node-flags. */
const NODE_FLAGS = argv.flatMap((a, i) => (a === "--node-flags" ? [argv[i + 1]] : []));

const log = (line: string) => {
  if (!json) process.stderr.write(line + "\n");
};

/** The environment a shipped agent gets: none of the checkout's variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of checkoutVariables(env)) delete env[k];
  return env;
}

const cleanup: (() => Promise<void> | void)[] = [];
let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void stopAll().then(() => process.exit(130));
  });
}

/** A chain with the registries and one enrolled device; the installation folder the agents run from (ota-ledger.json, deployments/). */
async function setUp(dir: string) {
  const port = await freePort();
  const chain: LocalChain = await startLocalChain({ port });
  cleanup.push(() => chain.stop());
  const provider = new JsonRpcProvider(chain.url, Network.from(31337), { staticNetwork: true });
  cleanup.push(() => provider.destroy());
  const admin = new Wallet(keccak256(toUtf8Bytes("bench device admin")), provider);
  const faucet = new NonceManager(Wallet.fromPhrase("test test test test test test test test test test test junk", provider));
  await (await faucet.sendTransaction({ to: admin.address, value: 10n ** 20n })).wait();
  const sender = new NonceManager(admin);
  const registry = await (await new UpdateRegistry__factory(sender).deploy(3600, admin.address)).waitForDeployment();
  const fleet = await (await new FleetRegistry__factory(sender).deploy(await registry.getAddress())).waitForDeployment();
  const policies = await (await new UpdatePolicies__factory(sender).deploy(await registry.getAddress())).waitForDeployment();
  await (await registry.connect(sender).registerHardwareClass("rev-a")).wait();
  const key = new SigningKey(keccak256(toUtf8Bytes("bench device key")));
  const record = {
    id: keccak256(toUtf8Bytes("bench device")),
    publicKey: key.compressedPublicKey,
    hardwareClass: 1,
    network: encodeBytes32String("bench"),
    region: encodeBytes32String("bench"),
  };
  await (await fleet.connect(sender).enrolDevice(record)).wait();
  await writeDeployment(deploymentPath(dir, "localhost"), {
    network: "localhost",
    chainId: 31337,
    updateRegistry: await registry.getAddress(),
    fleetRegistry: await fleet.getAddress(),
    updatePolicies: await policies.getAddress(),
    deployedAtBlock: 1,
  });
  writeFileSync(
    path.join(dir, "ota-ledger.json"),
    JSON.stringify({ network: "localhost", chainId: 31337, rpcUrl: chain.url, serverUrl: "http://127.0.0.1:9" }, null, 2),
  );
  // An idle device still follows a live ledger: a block a second, as in the demo.
  await provider.send("evm_setIntervalMining", [1000]);
  return (name: string) => {
    const file = path.join(dir, `${name}.device.json`);
    writeFileSync(
      file,
      JSON.stringify({
        privateKey: key.privateKey,
        credential: { record, batchId: 0, proof: [] },
        components: ["acme.firmware"],
        dataDir: `./${name}-data`,
        policy: { maxLedgerAgeSeconds: 3600 },
        healthCheck: "pass",
      }),
    );
    return file;
  };
}

/** Starts `command device run`, resolves with the process and the ms from spawn to "running 1 device agent". */
function startAgent(command: string[], deviceConfig: string, cwd: string): Promise<{ child: ChildProcess; ms: number }> {
  const [program, ...before] = command;
  const started = performance.now();
  const child = spawn(program, [...before, "device", "run", "--device-config", deviceConfig], { cwd, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no "running 1 device agent" within 60 s:\n${err.slice(-2000)}`)), 60_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(e);
    };
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (/running 1 device agent/.test(err)) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners("data").resume();
        child.removeAllListeners("exit");
        resolve({ child, ms: performance.now() - started });
      }
    });
    child.once("exit", (code) => fail(new Error(`exited with ${code} before it ran:\n${err.slice(-2000)}`)));
  });
}

function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** VmRSS and its anonymous part (what the process itself allocated, not the mapped Node binary), in MiB. */
function rssMiB(pid: number): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`no ${field} for ${pid}`);
    return Number(m[1]);
  };
  return { rss: kib("VmRSS") / 1024, anon: kib("RssAnon") / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cold starts (median of RUNS) and the idle RSS of IDLE_PROCESSES `device run` processes started with `command`. */
async function measure(name: string, command: string[], deviceConfig: string, cwd: string) {
  const starts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { child, ms } = await startAgent(command, deviceConfig, cwd);
    cleanup.push(() => stopAgent(child));
    starts.push(ms);
    await stopAgent(child);
  }
  // One process's idle RSS varies by several MiB from the next (malloc and JIT timing): the median of several.
  const perProcess: { rss: number; anon: number }[] = [];
  for (let i = 0; i < IDLE_PROCESSES; i++) {
    const { child } = await startAgent(command, deviceConfig, cwd);
    cleanup.push(() => stopAgent(child));
    await sleep(3000);
    const samples: { rss: number; anon: number }[] = [];
    for (let t = 0; t < 5000; t += 200) {
      samples.push(rssMiB(child.pid!));
      await sleep(200);
    }
    await stopAgent(child);
    perProcess.push({ rss: median(samples.map((x) => x.rss)), anon: median(samples.map((x) => x.anon)) });
  }
  const rss = perProcess.map((x) => x.rss);
  const figures = {
    coldStartMs: { median: Math.round(median(starts)), min: Math.round(Math.min(...starts)), max: Math.round(Math.max(...starts)), runs: RUNS },
    idleRssMiB: {
      median: round(median(rss)),
      min: round(Math.min(...rss)),
      max: round(Math.max(...rss)),
      anonMedian: round(median(perProcess.map((x) => x.anon))),
      processes: IDLE_PROCESSES,
    },
  };
  log(
    `${name.padEnd(44)} cold start ${figures.coldStartMs.median} ms (min ${figures.coldStartMs.min}, max ${figures.coldStartMs.max}), idle RSS ${figures.idleRssMiB.median} MiB (min ${figures.idleRssMiB.min}, max ${figures.idleRssMiB.max}; anonymous ${figures.idleRssMiB.anonMedian})`,
  );
  return figures;
}

function folderBytes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = statSync(p).size;
    }
  };
  walk(dir);
  return out;
}

/** Microseconds per call of each secp256k1 operation a device does, on one curve implementation. */
function curveCost(curve: Curve) {
  const priv = getBytes(keccak256(toUtf8Bytes("bench curve key")));
  const other = javascriptCurve.publicKeyOf(getBytes(keccak256(toUtf8Bytes("bench curve other"))));
  const digest = getBytes(keccak256(toUtf8Bytes("bench curve digest")));
  const signed = curve.sign(digest, priv);
  const time = (f: () => unknown, n = 200) => {
    for (let i = 0; i < 20; i++) f();
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    return Math.round(((performance.now() - t) * 1000) / n);
  };
  const us = {
    publicKeyUs: time(() => curve.publicKeyOf(priv)),
    ecdhUs: time(() => curve.sharedSecret(priv, other)),
    signUs: time(() => curve.sign(digest, priv)),
    recoverUs: time(() => curve.recover(digest, signed.rs, signed.recid)),
  };
  // One update: the content key unwrapped (public key, ECDH), a report sealed (ephemeral key,
  // ECDH), a tracker's notice opened (public key, ECDH, recovery). Device request signatures
  // use ethers' code on either curve.
  const perUpdateMs = round((us.publicKeyUs * 3 + us.ecdhUs * 3 + us.recoverUs) / 1000, 2);
  return { ...us, perUpdateMs };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), "ota-bench-device-"));
  cleanup.push(() => rmSync(work, { recursive: true, force: true }));
  const deviceConfig = await setUp(work);

  // The bundle, built from the sources and unpacked from its tarball outside the checkout.
  const built = await buildDevice({ dist: path.join(work, "build"), quiet: true });
  const folder = path.join(work, "device");
  execFileSync("tar", ["-xzf", built.tarball, "-C", work, "--transform", "s,^ota-ledger-device,device,"]);
  const bundleFiles = folderBytes(folder);
  const bundleBytes = Object.values(bundleFiles).reduce((a, b) => a + b, 0);
  log(
    `bundle folder: ${Object.entries(bundleFiles)
      .map(([f, b]) => `${f} ${b} B`)
      .join(", ")}; ${bundleBytes} B (${round(bundleBytes / MiB, 2)} MiB); tarball ${statSync(built.tarball).size} B`,
  );

  // The same bundle with libsecp256k1's prebuilt binaries for this platform beside it (node-gyp-build finds them there).
  const withNative = path.join(work, "device-native");
  cpSync(folder, withNative, { recursive: true });
  const prebuilds = path.join(path.dirname(require.resolve("secp256k1/package.json")), "prebuilds", `${process.platform}-${process.arch}`);
  const nativeAvailable = existsSync(prebuilds);
  if (nativeAvailable) cpSync(prebuilds, path.join(withNative, "prebuilds", `${process.platform}-${process.arch}`), { recursive: true });
  const nativeBytes = nativeAvailable
    ? Object.entries(folderBytes(withNative))
        .filter(([f]) => f.startsWith("prebuilds"))
        .reduce((a, [, b]) => a + b, 0)
    : 0;

  const variants: Record<string, unknown> = {};
  const LAUNCHED = "bundle via its launcher (ota-device: node --max-semi-space-size=1)";
  variants[LAUNCHED] = await measure("bundle, ./ota-device (the launcher)", [path.join(folder, "ota-device")], deviceConfig("bundle"), work);
  variants["bundle with plain node (node ota-device.js)"] = await measure(
    "bundle, plain node ota-device.js",
    [process.execPath, path.join(folder, "ota-device.js")],
    deviceConfig("bundle"),
    work,
  );
  for (const flags of NODE_FLAGS)
    variants[`bundle, node ${flags}`] = await measure(
      `bundle, node ${flags}`,
      [process.execPath, ...flags.split(" "), path.join(folder, "ota-device.js")],
      deviceConfig("bundle"),
      work,
    );
  if (nativeAvailable)
    variants["bundle + libsecp256k1 prebuilds beside it (launcher)"] = await measure(
      "bundle + libsecp256k1 prebuilds, launcher",
      [path.join(withNative, "ota-device")],
      deviceConfig("native"),
      work,
    );
  variants["full checkout (ota-ledger via ts-node)"] = await measure(
    "full checkout (bin/ota-ledger.js, ts-node)",
    [process.execPath, path.join(ROOT, "bin", "ota-ledger.js")],
    deviceConfig("tree"),
    work,
  );
  const dist = path.join(ROOT, "dist", "agent", "cli", "main.js");
  if (existsSync(dist)) {
    // What npm pack ships, run from the checkout's dist/ (the run-time dependencies resolve as in an install).
    const launcher = path.join(work, "dist-main.js");
    writeFileSync(launcher, `require(${JSON.stringify(dist)}).main(process.argv.slice(2)).then((c) => (process.exitCode = c));\n`);
    variants["tsc output (dist/, what npm pack ships)"] = await measure(
      "tsc output (dist/agent, node)",
      [process.execPath, launcher],
      deviceConfig("dist"),
      work,
    );
    // The other option of ADR 0007: the device entry compiled by tsc, its dependencies from node_modules.
    const deviceEntry = path.join(ROOT, "dist", "agent", "cli", "deviceMain.js");
    if (existsSync(deviceEntry))
      variants["tsc output, device entry (dist/agent/cli/deviceMain.js)"] = await measure(
        "tsc output, device entry (deviceMain.js)",
        [process.execPath, deviceEntry],
        deviceConfig("dist-device"),
        work,
      );
  } else log("dist/agent is not built (npm run build): the tsc output is not measured");
  if (INSTALLED)
    variants["production install (npm install -g of the packed package)"] = await measure(
      "production install (ota-ledger)",
      [path.join(INSTALLED, "bin", "ota-ledger")],
      deviceConfig("installed"),
      work,
    );

  const curve = { javascript: curveCost(javascriptCurve), ...(nativeSecp256k1 ? { libsecp256k1: curveCost(nativeSecp256k1) } : {}) };
  for (const [name, c] of Object.entries(curve))
    log(
      `curve ${name.padEnd(13)} public key ${c.publicKeyUs} µs, ECDH ${c.ecdhUs} µs, sign ${c.signUs} µs, recover ${c.recoverUs} µs; one update's operations ${c.perUpdateMs} ms`,
    );

  const figures = {
    goals: GOALS,
    bundle: {
      files: bundleFiles,
      bytes: bundleBytes,
      MiB: round(bundleBytes / MiB, 2),
      tarballBytes: statSync(built.tarball).size,
      nativeBytes: 0,
      libsecp256k1PrebuildsBytes: nativeBytes,
    },
    variants,
    curve,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  };
  if (json) console.log(JSON.stringify(figures, null, 2));
  else {
    const b = variants[LAUNCHED] as Awaited<ReturnType<typeof measure>>;
    console.log(
      `bundle + native parts ${figures.bundle.MiB} MiB (goal <= ${GOALS.bytesMiB}); idle RSS ${b.idleRssMiB.median} MiB, ${b.idleRssMiB.min}-${b.idleRssMiB.max} (goal <= ${GOALS.idleRssMiB}); cold start ${b.coldStartMs.median} ms (goal <= ${GOALS.coldStartMs})`,
    );
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
