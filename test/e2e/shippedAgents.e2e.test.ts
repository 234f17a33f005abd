import { expect } from "chai";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { World } from "./harness/world";
import { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { buildDevice } from "../../scripts/buildDevice";
import { checkoutVariables } from "../../scripts/lib/checkoutEnv";

const run = promisify(execFile);
const ROOT = path.join(__dirname, "..", "..");
const COMPONENT = "acme.sensor-fw";
/** What would let a shipped agent find the checkout's code: none of it may reach the agent's process. */
const HELPERS = checkoutVariables();

/**
 * The agents as they ship (ADR 0007), each in a folder of its own outside the checkout: the device
 * agent's bundle as an integrator unpacks it (one file, run with plain `node`, no node_modules),
 * and the production install of the packed package (`npm pack`, `npm install -g`, no development
 * dependencies). A chain with the registries, the firmware server and a published release come
 * from the test harness (World); each shipped device agent runs `device run --once` from the
 * installation's folder and must hold the exact image in its active slot.
 */
describe("e2e: the shipped agents: the device bundle and the packed production install take a release (DEP-8.1-b, ADR 0007)", function () {
  this.timeout(300_000);
  let world: World;
  let release: Published;
  const devices: Record<"bundle" | "installed", DeviceHandle> = {} as never;
  const temps: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    temps.push(dir);
    return dir;
  };

  /** `device run --once` with `command`, from the installation's folder; resolves with its exit and output. */
  const deviceRunOnce = async (name: string, command: string[], d: DeviceHandle) => {
    const p = new CliProcess(name, ["device", "run", "--once", "--device-config", d.configFile], { cwd: world.dir, command, unsetEnv: HELPERS });
    world.processes.add(p);
    const exit = await p.wait();
    return { exit, output: p.output(80), lines: p.lines };
  };

  before(async () => {
    world = await World.start();
    await world.startServer();
    devices.bundle = await world.device("shipped-bundle", 1);
    devices.installed = await world.device("shipped-install", 1);
    for (const d of Object.values(devices)) d.writeConfig({ components: [COMPONENT] });
    release = await world.author.ship(
      world.serverUrl,
      COMPONENT,
      "1.0.0",
      Object.values(devices).map((d) => d.id),
      { size: 300 * 1024 },
    );
  });

  after(async () => {
    await world?.stop();
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  describe("the device bundle (npm run build:device)", () => {
    let folder: string;
    let inputs: string[];

    before(async () => {
      // Built from the sources into a folder of the test's own, and unpacked as an integrator does.
      const built = await buildDevice({ dist: tempDir("ota-device-build-"), quiet: true });
      inputs = Object.keys(built.metafile.inputs);
      const unpacked = tempDir("ota-device-");
      await run("tar", ["-xzf", built.tarball, "-C", unpacked]);
      folder = path.join(unpacked, "ota-ledger-device");
    });

    it("REQ-10e: holds only what a device runs (the consumer, the chain reader, crypto, the device commands), as one file with no native part", () => {
      expect(readdirSync(folder).sort()).to.deep.equal(["THIRD_PARTY_LICENSES.txt", "ota-device", "ota-device.js", "package.json"]);
      expect(JSON.parse(readFileSync(path.join(folder, "package.json"), "utf8"))).to.include({ name: "ota-ledger-device", type: "commonjs" });
      for (const part of [
        "agent/consumer/deviceAgent.ts",
        "agent/consumer/ledgerWatcher.ts",
        "agent/chain/eventStream.ts",
        "agent/crypto/keyWrap.ts",
        "agent/cli/commands/device/onDevice.ts",
      ]) {
        expect(inputs, part).to.include(part);
      }
      const never = inputs.filter((i) =>
        /node_modules\/(helia|@helia|libp2p|@libp2p|fastify|@fastify|better-sqlite3|better-sqlite3-napi|kubo-rpc-client|elliptic|hardhat|typescript|ts-node)\/|^agent\/(author|server|tracker|storage)\/|^agent\/cli\/commands\/(?!device\/onDevice\.ts$)/.test(
          i,
        ),
      );
      expect(never, "what a device never runs").to.deep.equal([]);
    });

    it("DEP-8.1-a DEP-8.2.1 PROC-4 PROC-5 CAP-11.1-a-v REQ-10d-ii: run with plain node from a folder without node_modules, `device run --once` verifies the published release and installs it; the slot holds the exact image", async () => {
      for (let dir = folder; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
        expect(existsSync(path.join(dir, "node_modules")), `${dir}/node_modules: the bundle must need nothing beside it`).to.equal(false);
      }
      const packageVersion = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version;
      const version = await run(process.execPath, [path.join(folder, "ota-device.js"), "--version"], { cwd: folder });
      expect(version.stdout.trim()).to.equal(packageVersion);
      // The launcher a service runs (node with the bundle's memory setting) starts the same program.
      const launched = await run(path.join(folder, "ota-device"), ["--version"], { cwd: tmpdir() });
      expect(launched.stdout.trim()).to.equal(packageVersion);

      const r = await deviceRunOnce("bundled device agent", [process.execPath, path.join(folder, "ota-device.js")], devices.bundle);
      expect(r.exit.code, r.output).to.equal(0);
      expect(
        r.lines.some((l) => l.includes(`release ${release.releaseId}: confirmed (OK)`)),
        r.output,
      ).to.equal(true);
      const active = await devices.bundle.active(COMPONENT);
      expect(active?.releaseId, r.output).to.equal(release.releaseId);
      expect(active!.bytes.equals(release.image), "the active slot holds the image byte for byte").to.equal(true);
    });
  });

  describe("the packed production install (npm pack, npm install -g)", () => {
    let prefix: string;
    let installed: string;

    before(async function () {
      // npm pack builds first (prepack: npm run build); better-sqlite3 builds from source on install.
      this.timeout(900_000);
      const packDir = tempDir("ota-pack-");
      const env = { ...process.env };
      for (const k of [...HELPERS, "HARDHAT_NETWORK"]) delete env[k];
      for (const k of Object.keys(env)) if (k.startsWith("OTA_")) delete env[k];
      await run("npm", ["pack", "--pack-destination", packDir], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
      const tarball = readdirSync(packDir).find((f) => f.endsWith(".tgz"));
      expect(tarball, `npm pack wrote no tarball in ${packDir}`).to.be.a("string");
      prefix = tempDir("ota-install-");
      await run("npm", ["install", "-g", "--prefix", prefix, "--allow-scripts=better-sqlite3", "--legacy-peer-deps", path.join(packDir, tarball!)], {
        cwd: prefix,
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
      installed = path.join(prefix, "lib", "node_modules", "ota-ledger");
    });

    it("installs no development dependency (hardhat, ts-node, typescript) and no sources; ota-ledger --version prints the package's version", async () => {
      for (const dev of ["hardhat", "ts-node", "typescript", "esbuild", "@nomicfoundation/hardhat-ethers"]) {
        expect(existsSync(path.join(installed, "node_modules", dev)), `${dev} is installed`).to.equal(false);
      }
      expect(existsSync(path.join(installed, "node_modules", "better-sqlite3")), "run-time dependencies are").to.equal(true);
      expect(existsSync(path.join(installed, "agent")), "TypeScript sources").to.equal(false);
      expect(existsSync(path.join(installed, "dist", "agent", "cli", "main.js"))).to.equal(true);
      const version = await run(path.join(prefix, "bin", "ota-ledger"), ["--version"], { cwd: prefix });
      expect(version.stdout.trim()).to.equal(JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version);
    });

    it("DEP-8.1-a DEP-8.2.1 PROC-4 PROC-5 CAP-11.1-a-v: its `ota-ledger device run --once` takes the release too; the slot holds the exact image", async () => {
      const r = await deviceRunOnce("installed device agent", [path.join(prefix, "bin", "ota-ledger")], devices.installed);
      expect(r.exit.code, r.output).to.equal(0);
      expect(
        r.lines.some((l) => l.includes(`release ${release.releaseId}: confirmed (OK)`)),
        r.output,
      ).to.equal(true);
      const active = await devices.installed.active(COMPONENT);
      expect(active?.releaseId, r.output).to.equal(release.releaseId);
      expect(active!.bytes.equals(release.image), "the active slot holds the image byte for byte").to.equal(true);
    });
  });
});
