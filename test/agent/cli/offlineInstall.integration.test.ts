import { expect } from "chai";
import { promises as fs, writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet } from "ethers";
import { cliChainWithServer, type CliChain, type CliChainWithServer } from "./cliHarness";
import { loadBootState } from "../../../agent/consumer/slots/bootState";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { parseIdOrLabel } from "../../../agent/cli/parse";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { BUNDLE_MAGIC } from "../../../agent/consumer/offlineBundle";
import { startTracker, type TrackerChain } from "../../helpers/trackerFixture";

const BOOT = componentId("acme.bootloader").toLowerCase();
const DEAD = "http://127.0.0.1:9"; // nothing listens there

/**
 * Offline install (issue 19 item 10, ADR 0017): `release export` on a real chain with a real
 * firmware server writes one bundle; `device install --offline` takes it with the chain and the
 * server out of reach (the device pointed at dead URLs), and refuses every tampered bundle with
 * its code, installing nothing; the result reaches the tracker once the device reports again.
 */
describe("ota-ledger release export and device install --offline (CAP-11.1-b)", function () {
  this.timeout(240_000);
  let c: CliChain;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;
  let deviceDir: string;
  let config: string;
  let baseConfig: Record<string, unknown>;
  const offlineEnv = { OTA_RPC_URL: DEAD, OTA_SERVER_URL: DEAD };
  const published: Record<string, { releaseId: string; artifactFile: string }> = {};

  before(async () => {
    ({ c, env, setup, stop } = await cliChainWithServer());
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "acme-board-rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
    ]);
    deviceDir = path.join(c.dir, "device");
    config = path.join(deviceDir, "device.json");
    for (const [label, dir] of [
      ["offline-0001", "device"],
      ["offline-0002", "other"],
    ]) {
      const k = await c.run(["device", "keygen", `${dir}/device.key`, "--json"]);
      expect(k.code, k.stderr).to.equal(0);
      const enrol = await c.run(
        [
          "device",
          "enrol",
          "--id",
          label,
          "--public-key",
          k.json().publicKey,
          "--hardware",
          "acme-board-rev-a",
          "--network",
          "plant-1",
          "--region",
          "eu",
          "--json",
        ],
        env,
      );
      expect(enrol.code, enrol.stderr + enrol.stdout).to.equal(0);
      if (dir === "device") {
        await fs.writeFile(path.join(deviceDir, "selftest.sh"), "#!/bin/sh\ntest ! -e fail\n", { mode: 0o755 });
        baseConfig = {
          keyFile: "device.key",
          credential: { record: enrol.json().device, batchId: 0, proof: [] },
          components: ["acme.bootloader"],
          dataDir: "./data",
          policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
          healthCheck: { command: ["./selftest.sh"], timeoutMs: 10_000 },
        };
        await writeConfig({});
      }
    }
  });
  after(async () => {
    await stop?.();
  });

  const writeConfig = (extra: Record<string, unknown>) => fs.writeFile(config, JSON.stringify({ ...baseConfig, ...extra }));

  async function publish(version: string): Promise<void> {
    const image = path.join(c.dir, `bootloader-${version}.bin`);
    writeFileSync(image, Buffer.alloc(70 * 1024 + version.length, version.charCodeAt(2)));
    const r = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", version, "--file", image, "--hardware", "acme-board-rev-a", "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    published[version] = { releaseId: r.json().release.releaseId, artifactFile: r.json().release.artifactFile };
  }
  const boot = async () => {
    const loaded = await loadBootState(path.join(deviceDir, "data", "slots"));
    if ("corrupt" in loaded) throw new Error(loaded.corrupt);
    return loaded.state;
  };
  const active = async () => {
    const s = await boot();
    const comp = s.components[BOOT];
    return comp?.slots[comp.active]?.releaseId;
  };
  async function exportBundle(version: string, out: string, extra: string[] = []) {
    const r = await c.run(
      [
        "release",
        "export",
        published[version].releaseId,
        "--device",
        "offline-0001",
        "--artifact",
        published[version].artifactFile,
        "--out",
        out,
        ...extra,
        "--json",
      ],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    return r.json();
  }
  const install = (bundle: string, extra: string[] = []) =>
    c.run(["device", "install", "--device-config", config, "--offline", bundle, ...extra, "--json"], offlineEnv);

  /** The bundle's manifest, changed by `edit`, written to a new file (its framing rewritten). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function rewrite(bundle: string, out: string, edit: (m: any) => void): Promise<string> {
    const bytes = await fs.readFile(path.join(c.dir, bundle));
    const m = bytes.readUInt32BE(10);
    const manifest = JSON.parse(bytes.subarray(14, 14 + m).toString("utf8"));
    edit(manifest);
    const json = Buffer.from(JSON.stringify(manifest));
    const head = Buffer.from(bytes.subarray(0, 14));
    head.writeUInt32BE(json.length, 10);
    await fs.writeFile(path.join(c.dir, out), Buffer.concat([head, json, bytes.subarray(14 + m)]));
    return out;
  }

  let trustedBlock: { number: number; hash: string };

  it("CAP-11.1-b, REQ-10d-ii: a device in safe mode that learned a block online installs a bundle exported at it with no chain or server reachable, and leaves safe mode", async () => {
    await publish("1.0.0");
    // A garbled boot state: safe mode. Run online once: it refuses automatic updates and learns a block of its ledger.
    await fs.mkdir(path.join(deviceDir, "data", "slots", BOOT, "a"), { recursive: true });
    await fs.writeFile(path.join(deviceDir, "data", "slots", "boot-state.json"), "{ torn");
    const online = await c.run(["device", "run", "--device-config", config, "--once", "--json"], env);
    expect(online.code, online.stderr + online.stdout).to.equal(0);
    expect(online.json().devices[0]).to.include({ safeMode: true });
    const learned = JSON.parse(await fs.readFile(path.join(deviceDir, "data", "offline-state.json"), "utf8")).trustedBlocks;
    expect(learned).to.have.length(1);
    trustedBlock = learned[0];
    expect(trustedBlock.hash).to.equal((await c.provider.getBlock(trustedBlock.number))!.hash);

    const exported = await exportBundle("1.0.0", "boot-1.0.0.otab", ["--block", String(trustedBlock.number)]);
    expect(exported.block).to.include({ number: trustedBlock.number, hash: trustedBlock.hash });
    const artifactBytes = (await fs.stat(published["1.0.0"].artifactFile)).size;
    expect(exported.bytes.ciphertext).to.equal(artifactBytes);
    expect(exported.bytes.bundle).to.equal((await fs.stat(path.join(c.dir, "boot-1.0.0.otab"))).size);
    console.log(`      bundle ${exported.bytes.bundle} bytes for an artifact of ${artifactBytes} (manifest ${exported.bytes.manifest})`);

    const r = await install("boot-1.0.0.otab", ["--floor", "acme.bootloader=0.9.0"]);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.json()).to.deep.include({ outcome: "confirmed", code: "OK", leftSafeMode: true, safeMode: false });
    expect(await active()).to.equal(published["1.0.0"].releaseId.toLowerCase());
    const state = await boot();
    expect(state.components[BOOT].floor).to.equal(encodeVersion("1.0.0").toString());
    // Not reported yet (no tracker was reachable): the boot state keeps the result for the next report.
    expect(state.lastResult).to.include({ outcome: "confirmed", reported: false });
  });

  describe("tampered or foreign bundles are refused with their code, and nothing is installed", () => {
    let before: Awaited<ReturnType<typeof boot>>;
    const refused = async (bundle: string, exit: number, code: string, message?: RegExp) => {
      const r = await install(bundle);
      expect(r.code, r.stderr + r.stdout).to.equal(exit);
      expect(r.json().error.code, r.stdout).to.equal(code);
      if (message) expect(r.json().error.message).to.match(message);
      const { counter: _a, ...after } = await boot();
      const { counter: _b, ...unchanged } = before;
      expect(after).to.deep.equal(unchanged);
      expect(await fs.readdir(path.join(deviceDir, "data", "downloads")).catch(() => [])).to.deep.equal([]);
    };

    it("(setup) 1.1.0 exported at a block device.json lists as trusted", async () => {
      await publish("1.1.0");
      const block = await c.provider.getBlock(await c.blockNumber());
      await writeConfig({ offline: { trustedBlocks: [{ number: block!.number, hash: block!.hash }] } });
      const e = await exportBundle("1.1.0", "boot-1.1.0.otab", ["--block", String(block!.number)]);
      expect(e.block.number).to.equal(block!.number);
      await c.provider.send("evm_mine", []);
      const latest = await exportBundle("1.1.0", "boot-1.1.0-latest.otab"); // the newest block: mined later, trusted by nobody
      expect(latest.block.number).to.be.greaterThan(block!.number);
      const other = await c.run(
        [
          "release",
          "export",
          published["1.1.0"].releaseId,
          "--device",
          "offline-0002",
          "--artifact",
          published["1.1.0"].artifactFile,
          "--out",
          "other-1.1.0.otab",
          "--block",
          String(block!.number),
          "--json",
        ],
        env,
      );
      expect(other.code, other.stderr + other.stdout).to.equal(0);
      before = await boot();
    });

    it("CAP-11.1-a-v, CAP-11.4-a: a flipped ciphertext byte is CHUNK_MISMATCH (exit 2)", async () => {
      const bytes = await fs.readFile(path.join(c.dir, "boot-1.1.0.otab"));
      bytes[bytes.length - 100] ^= 0x01;
      await fs.writeFile(path.join(c.dir, "flipped.otab"), bytes);
      await refused("flipped.otab", 2, "CHUNK_MISMATCH", /Merkle root|not the release's artifact/);
    });

    it("REQ-10d-ii: a forged proof node is OFFLINE_PROOF_INVALID (exit 2)", async () => {
      await rewrite("boot-1.1.0.otab", "forged-proof.otab", (m) => {
        const nodes: string[] = m.proofs.registry.storageProof[0].proof;
        const last = nodes[nodes.length - 1];
        nodes[nodes.length - 1] = last.slice(0, -2) + (last.endsWith("00") ? "01" : "00");
      });
      await refused("forged-proof.otab", 2, "OFFLINE_PROOF_INVALID", /state root/);
      // A status word forged to "active" with the proof left as it was: the proof shows the stored word.
      await rewrite("boot-1.1.0.otab", "forged-value.otab", (m) => (m.proofs.fleet.storageProof[0].value = "0x1"));
      await refused("forged-value.otab", 2, "OFFLINE_PROOF_INVALID");
    });

    it("REQ-10d-ii: a header of another chain, a block the device does not trust, and one too old are OFFLINE_BLOCK_UNTRUSTED (exit 2)", async () => {
      await rewrite("boot-1.1.0.otab", "other-chain.otab", (m) => (m.chain.chainId = "1"));
      await refused("other-chain.otab", 2, "OFFLINE_BLOCK_UNTRUSTED", /chainId 1/);
      await refused("boot-1.1.0-latest.otab", 2, "OFFLINE_BLOCK_UNTRUSTED", /is not a block this device trusts; it trusts/);
      // The same block, with the device's limit shorter than its age.
      const trusted = JSON.parse(await fs.readFile(config, "utf8")).offline.trustedBlocks;
      const block = await c.provider.getBlock(trusted[0].number);
      await new Promise((r) => setTimeout(r, Math.max(0, (block!.timestamp + 61) * 1000 - Date.now())));
      await writeConfig({ offline: { trustedBlocks: trusted, maxBlockAgeSeconds: 60 } });
      try {
        await refused("boot-1.1.0.otab", 2, "OFFLINE_BLOCK_UNTRUSTED", /s old, over this device's limit of 60 s/);
      } finally {
        await writeConfig({ offline: { trustedBlocks: trusted } });
      }
    });

    it("REQ-10d-ii, APP-II-1: a record altered is OFFLINE_RECORD_INVALID, a signer and signature swapped prove nothing: OFFLINE_PROOF_INVALID (exit 2)", async () => {
      await rewrite("boot-1.1.0.otab", "altered-record.otab", (m) => (m.release.record.fileName = "evil.bin"));
      await refused("altered-record.otab", 2, "OFFLINE_RECORD_INVALID", /hashes to/);
      const forger = Wallet.createRandom();
      await rewrite("boot-1.1.0.otab", "altered-signer.otab", (m) => {
        m.release.signer = forger.address;
        m.release.signature = forger.signingKey.sign(m.release.id).serialized;
      });
      await refused("altered-signer.otab", 2, "OFFLINE_PROOF_INVALID"); // the proof asked is for the forger's slot, which the bundle does not hold
    });

    it("REQ-10f-iii: another device's wrapped key is KEY_UNWRAP_FAILED (exit 2), and another device's whole bundle proves nothing for this one", async () => {
      const other = JSON.parse(
        (await fs.readFile(path.join(c.dir, "other-1.1.0.otab")))
          .subarray(14, 14 + (await fs.readFile(path.join(c.dir, "other-1.1.0.otab"))).readUInt32BE(10))
          .toString(),
      );
      await rewrite("boot-1.1.0.otab", "other-key.otab", (m) => (m.wrappedKey = other.wrappedKey));
      await refused("other-key.otab", 2, "KEY_UNWRAP_FAILED", /another device/);
      await refused("other-1.1.0.otab", 2, "OFFLINE_PROOF_INVALID");
    });

    it("CAP-11.1-b: a bundle that is not one (bad magic, a declared manifest length past the file, a huge declared ciphertext, a trailing byte) is OFFLINE_BUNDLE_MALFORMED (exit 2)", async () => {
      const bytes = await fs.readFile(path.join(c.dir, "boot-1.1.0.otab"));
      await fs.writeFile(path.join(c.dir, "magic.otab"), Buffer.concat([Buffer.from("NOTABUND"), bytes.subarray(8)]));
      await refused("magic.otab", 2, "OFFLINE_BUNDLE_MALFORMED", /magic/);
      const long = Buffer.from(bytes);
      long.writeUInt32BE(1024 * 1024, 10);
      await fs.writeFile(path.join(c.dir, "long.otab"), long);
      await refused("long.otab", 2, "OFFLINE_BUNDLE_MALFORMED");
      expect(bytes.subarray(0, 8).equals(BUNDLE_MAGIC)).to.equal(true);
      // A genuine manifest, then a ciphertext length of 2^63: refused from the length alone, nothing read for it.
      const huge = Buffer.from(bytes);
      huge.writeBigUInt64BE(2n ** 63n, 14 + bytes.readUInt32BE(10));
      await fs.writeFile(path.join(c.dir, "huge-ciphertext.otab"), huge);
      await refused("huge-ciphertext.otab", 2, "OFFLINE_BUNDLE_MALFORMED", /declares a ciphertext of 9223372036854775808 bytes/);
      // One byte more than the ciphertext it declares.
      await fs.writeFile(path.join(c.dir, "trailing.otab"), Buffer.concat([bytes, Buffer.from([0])]));
      await refused("trailing.otab", 2, "OFFLINE_BUNDLE_MALFORMED", /bytes of ciphertext, but/);
    });

    it("CAP-11.1-b, REQ-10d-i: the genuine bundle installs; then a downgrade (1.0.0's bundle) is NOT_NEWER_THAN_INSTALLED (exit 1), nothing installed", async () => {
      const r = await install("boot-1.1.0.otab");
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(r.json()).to.deep.include({ outcome: "confirmed", leftSafeMode: false });
      expect(await active()).to.equal(published["1.1.0"].releaseId.toLowerCase());
      const trusted = JSON.parse(await fs.readFile(config, "utf8")).offline.trustedBlocks;
      await exportBundle("1.0.0", "downgrade.otab", ["--block", String(trusted[0].number)]);
      before = await boot();
      await refused("downgrade.otab", 1, "NOT_NEWER_THAN_INSTALLED");
    });
  });

  describe("on reconnect", () => {
    it("CAP-11.1-a-i, REQ-10c-i: the install reaches the tracker in the device's first report once it is back; a revocation after the bundle's block is seen on reconnect", async () => {
      // A tracker module on the ledger, started only now: the device was offline when it installed.
      const label = "offline-tracker";
      const made = await c.run(["tracker", "keygen", "keys/tracker.key", "--json"]);
      expect(made.code, made.stderr).to.equal(0);
      const moduleKey = (await fs.readFile(path.join(c.dir, "keys", "tracker.key"), "utf8")).trim();
      const grant = await c.run(["tracker", "grant", c.admin.address], env);
      expect(grant.code, grant.stderr + grant.stdout).to.equal(0);
      const reg = await c.run(["tracker", "register", "--json"], { ...env, OTA_TRACKER_MODULE: label, OTA_TRACKER_KEY_FILE: "keys/tracker.key" });
      expect(reg.code, reg.stderr + reg.stdout).to.equal(0);
      const moduleId = parseIdOrLabel(label, "module");
      const t = { c, domain: registryDomain(31337, String(c.registry.target)), fromBlock: 1 } as unknown as TrackerChain;
      const tracker = await startTracker(t, { id: moduleId, privateKey: moduleKey });
      try {
        const json = JSON.parse(await fs.readFile(config, "utf8"));
        await fs.writeFile(
          config,
          JSON.stringify({ ...json, tracker: { moduleId, publicKey: new Wallet(moduleKey).signingKey.compressedPublicKey, url: tracker.http.url } }),
        );
        // Revoked after the bundle's block: the device could not know when it installed 1.1.0 offline.
        const revoke = await c.run(["release", "revoke", published["1.1.0"].releaseId, "--reason", "found bad after export", "--json"], env);
        expect(revoke.code, revoke.stderr + revoke.stdout).to.equal(0);
        const r = await c.run(["device", "run", "--device-config", config, "--once", "--json"], env);
        expect(r.code, r.stderr + r.stdout).to.equal(0);
        expect(r.stderr).to.match(new RegExp(`release ${published["1.1.0"].releaseId.toLowerCase()} installed offline: revoked on the ledger now`));
        const row = tracker.tracker.store.devices.get(parseIdOrLabel("offline-0001", "device"))!;
        expect(row).to.include({ safeMode: false });
        expect(row.lastSeen).to.be.a("number");
        const state = await boot();
        expect(state.lastResult?.reported).to.equal(true);
        const offlineState = JSON.parse(await fs.readFile(path.join(deviceDir, "data", "offline-state.json"), "utf8"));
        expect(offlineState.offlineInstalls).to.deep.equal({});
      } finally {
        await tracker.stop();
      }
    });
  });
});
