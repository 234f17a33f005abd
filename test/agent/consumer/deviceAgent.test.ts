import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, promises as fsPromises } from "node:fs";
import path from "node:path";
import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, writeImage, makeDevice } from "../../helpers/serverFixture";
import { ACME_SIGNER } from "../../helpers/registryFixture";
import { DeviceAgent, type DeviceAgentOptions } from "../../../agent/consumer/deviceAgent";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { openMessage, sealMessage } from "../../../agent/crypto/sealedMessage";
import { QUERY_KIND } from "../../../agent/consumer/imageQuery";
import http from "node:http";
import { NOTICE_KIND } from "../../../agent/core/updateNotice";
import { prepareRelease, publishPrepared } from "../../../agent/author/publishRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";
import { computeReleaseId, signRelease } from "../../../agent/crypto/releaseSignature";
import { expectCode } from "../../helpers/expectCode";
import { answeringServer } from "../../helpers/deliveryMirrors";
import { keyWrapContext, wrapContentKey } from "../../../agent/crypto/keyWrap";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
const BOOT = componentId("acme.bootloader");
const SENSOR = componentId("acme.sensor-fw");

describe("agent/consumer/deviceAgent: the firmware consumer (X.1368 11.1)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let healthy = true;
  let n = 0;

  before(async () => (f = await serverFixture()));
  after(async () => f?.close());
  afterEach(() => {
    f.store.fault = { kind: "none" };
    healthy = true;
  });

  async function agentFor(device: DeviceIdentity, extra: Partial<DeviceAgentOptions> = {}) {
    n += 1;
    return DeviceAgent.open({
      dataDir: path.join(f.dir, `device-${n}`),
      device,
      serverUrl: f.server.url,
      chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0 },
      components: [BOOT, SENSOR],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async () => healthy,
      download: { startJitterMs: 0, timeoutMs: 2000, attempts: 2, backoffMs: 50 },
      blockedRetry: { baseMs: 1, maxMs: 1 }, // retryPending retries a blocked delivery at once here
      ...extra,
    });
  }
  let imageSeed = 100;
  const release = (component: string, version: string, grant: DeviceIdentity[], extra: { hardware?: string[]; depends?: string[] } = {}) =>
    f.release(
      {
        component,
        version,
        file: writeImage(f.dir, `${component}-${version}.bin`, 150 * 1024 + imageSeed, imageSeed++),
        hardware: extra.hardware ?? ["acme-board-rev-a"],
        depends: extra.depends ?? [],
      },
      { grant },
    );
  const boot = (a: DeviceAgent, component = BOOT) => {
    const c = a.slots.snapshot().components[component];
    return c && { active: c.active, image: c.slots[c.active], floor: c.floor };
  };
  const activeBytes = (a: DeviceAgent, component = BOOT) => {
    const c = a.slots.snapshot().components[component];
    return readFileSync(path.join(a.slots.slotDir(component, c.active), "image.bin"));
  };

  let agent: DeviceAgent;
  let v1: Awaited<ReturnType<typeof release>>;

  it("PROC-3 REQ-10c CAP-11.1-a-iii: takes a release end to end: ledger checks, verified download, decryption into the inactive slot, trial boot, confirmation", async () => {
    v1 = await release("acme.bootloader", "1.0.0", [f.devices.a]);
    agent = await agentFor(f.devices.a);
    expect(await agent.considerRelease(v1.releaseId, "new-release")).to.deep.equal({ releaseId: v1.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" });
    const b = boot(agent)!;
    expect(b.image!.releaseId).to.equal(v1.releaseId.toLowerCase());
    expect(b.floor).to.equal(v1.record.version.toString());
    expect("0x" + createHash("sha256").update(activeBytes(agent)).digest("hex")).to.equal(v1.record.fileHash);
    const report = await agent.statusReport();
    expect(report.installed).to.deep.include({ component: BOOT, version: v1.record.version.toString(), releaseId: v1.releaseId.toLowerCase(), slot: b.active });
    expect(report.lastResult).to.include({ outcome: "confirmed", code: "OK" });
  });

  it("CAP-11.1-a-iii REQ-10c-ii: rolls back a release whose trial boot fails its health check, and does not retry it blindly", async () => {
    const v2 = await release("acme.bootloader", "1.1.0", [f.devices.a]);
    const before = boot(agent);
    healthy = false;
    expect(await agent.considerRelease(v2.releaseId, "new-release")).to.include({ outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" });
    expect(boot(agent)).to.deep.equal(before);
    healthy = true;
    expect(await agent.considerRelease(v2.releaseId, "new-release")).to.include({ outcome: "declined", code: "PREVIOUSLY_FAILED" });
    expect(boot(agent)).to.deep.equal(before);
  });

  describe("attacks (CAP-11.1-a-v): each refused with its code, the active slot and the anti-rollback floor unmoved", () => {
    const unmoved = async (run: () => Promise<{ code: string }>, code: string, a = () => agent) => {
      const before = boot(a());
      const bytes = activeBytes(a());
      const out = await run();
      expect(out.code).to.equal(code);
      expect(boot(a())).to.deep.equal(before);
      expect(activeBytes(a())).to.deep.equal(bytes);
    };

    it("REQ-10d-i: a downgrade, also after a restart with old ledger data replayed", async () => {
      await unmoved(() => agent.considerRelease(v1.releaseId, "replayed"), "NOT_NEWER_THAN_INSTALLED");
      const restarted = await DeviceAgent.open({ ...(agent as unknown as { o: DeviceAgentOptions }).o });
      await unmoved(
        () => restarted.considerRelease(v1.releaseId, "replayed after restart"),
        "NOT_NEWER_THAN_INSTALLED",
        () => restarted,
      );
    });

    it("CAP-11.4-a: mix-and-match (the record of release N with the artifact of N-1)", async () => {
      const v3 = await release("acme.bootloader", "1.2.0", [f.devices.a]);
      f.store.fault = { kind: "substitute", cid: v1.record.fileLink };
      await unmoved(() => agent.considerRelease(v3.releaseId, "new-release"), "CHUNK_MISMATCH");
    });

    it("REQ-10f-ii: endless data: stopped at the recorded size; the chunks verified before it are kept and the retry has nothing left to fetch (issue 15)", async () => {
      const v4 = await release("acme.bootloader", "1.3.0", [f.devices.a]);
      f.store.fault = { kind: "endless" };
      const logged: string[] = [];
      const a = await DeviceAgent.open({
        ...(agent as unknown as { o: DeviceAgentOptions }).o,
        download: { startJitterMs: 0, timeoutMs: 2000, attempts: 1 },
        log: (l) => logged.push(l),
      });
      // One attempt: the stream is cut at the recorded size, a delivery fault (ARTIFACT_TOO_LONG), not a failed release.
      await unmoved(
        () => a.considerRelease(v4.releaseId, "new-release"),
        "ARTIFACT_TOO_LONG",
        () => a,
      );
      expect((await a.statusReport()).lastResult).to.include({ outcome: "blocked", code: "ARTIFACT_TOO_LONG" });
      // Every chunk was verified before the excess: the retry resumes after the last one and installs.
      const retried = await a.retryPending(); // (with the earlier tests' blocked deliveries, tried again too)
      expect(retried.find((r) => r.releaseId === v4.releaseId.toLowerCase())).to.deep.equal({
        releaseId: v4.releaseId.toLowerCase(),
        outcome: "confirmed",
        code: "OK",
      });
    });

    it("slow retrieval: a server that trickles bytes times out", async () => {
      const v5 = await release("acme.bootloader", "1.4.0", [f.devices.a]);
      f.store.fault = { kind: "trickle", pieceBytes: 16, delayMs: 2500 };
      await unmoved(() => agent.considerRelease(v5.releaseId, "new-release"), "DOWNLOAD_STALLED");
    });

    it("APP-II-1: an arbitrary image (the decrypted bytes are not the ledger's file hash)", async () => {
      // An author key signs a record whose file hash is not its image's: the content check catches it.
      const image = writeImage(f.dir, "arbitrary.bin", 90 * 1024, 77);
      const prepared = await prepareRelease(
        { registry: f.registry, domain: f.domain, sender: f.acmeAuthor, releaseSigner: ACME_SIGNER },
        { component: "acme.bootloader", version: "1.5.0", file: image, hardware: ["1"], depends: [] },
        path.join(f.dir, "arb"),
      );
      const record = { ...prepared.record, fileHash: keccak256(toUtf8Bytes("some other image")) };
      const forged = { ...prepared, record, releaseId: computeReleaseId(f.domain, record), signature: await signRelease(ACME_SIGNER, f.domain, record) };
      await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, forged);
      await uploadArtifact({ serverUrl: f.server.url, author: f.acmeAuthor }, forged.releaseId, prepared.artifactFile);
      await grantKeys(
        { registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url },
        forged.releaseId,
        { deviceIds: [f.devices.a.credential.record.id] },
      );
      await unmoved(() => agent.considerRelease(forged.releaseId, "new-release"), "FILE_HASH_MISMATCH");
      // Delivered intact, then failed on the device: a failed release, the one kind that counts against a rollout (issue 15).
      expect((await agent.statusReport()).lastResult).to.include({ outcome: "failed", code: "FILE_HASH_MISMATCH" });
    });

    it("review (issue 15): a server claiming RELEASE_REVOKED for a release the ledger holds active is a blocked delivery, not a refusal; the ledger's word decides", async () => {
      const v = await release("acme.bootloader", "1.5.1", [f.devices.a]);
      const liar = await answeringServer((_req, res) => {
        res.writeHead(410, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "RELEASE_REVOKED", message: "revoked (it is not)" } }));
      });
      try {
        const a = await agentFor(f.devices.a, { serverUrl: liar.url, download: { startJitterMs: 0, timeoutMs: 2000, attempts: 1 } });
        await a.considerRelease(v1.releaseId, "first install").catch(() => undefined); // nothing installs from the liar
        expect(await a.considerRelease(v.releaseId, "new-release")).to.deep.include({ outcome: "blocked", code: "RELEASE_REVOKED" });
        // The release stays needed: once a truthful source answers, it installs.
        const honest = await agentFor(f.devices.a, { download: { startJitterMs: 0, timeoutMs: 2000, attempts: 1 } });
        expect(await honest.considerRelease(v.releaseId, "new-release")).to.deep.include({ outcome: "confirmed" });
      } finally {
        await liar.close();
      }
    });

    it("CAP-11.3-c: a release revoked after its download, before its install, is not installed", async () => {
      const v6 = await release("acme.bootloader", "1.6.0", [f.devices.a]);
      const a = await agentFor(f.devices.a, {
        onPhase: async (phase, id) => {
          if (phase === "downloaded" && id === v6.releaseId.toLowerCase()) await f.registry.connect(f.auditor).revokeRelease(v6.releaseId, "found a backdoor");
        },
      });
      await a.considerRelease(v1.releaseId, "first install");
      await unmoved(
        () => a.considerRelease(v6.releaseId, "new-release"),
        "RELEASE_REVOKED",
        () => a,
      );
    });

    it("APP-II-2: wrong hardware, and an unmet dependency", async () => {
      const gateway = makeDevice("gateway-agent", 3);
      await f.fleet.connect(f.admin).enrolDevice(gateway.credential.record);
      const g = await agentFor(gateway);
      expect((await g.considerRelease(v1.releaseId, "new-release")).code).to.equal("HARDWARE_NOT_SUPPORTED");
      const sensor = await release("acme.sensor-fw", "1.0.0", [f.devices.b], { depends: ["acme.bootloader ^1.0.0"] });
      const b = await agentFor(f.devices.b);
      expect((await b.considerRelease(sensor.releaseId, "new-release")).code).to.equal("DEPENDENCY_NOT_INSTALLED");
      expect(b.slots.snapshot().components[SENSOR]?.slots.a ?? null).to.equal(null);
    });

    it("a stale ledger view is reported as stale, never as up to date", async () => {
      const v7 = await release("acme.bootloader", "1.7.0", [f.devices.a]);
      const late = await agentFor(f.devices.a, { policy: { maxLedgerAgeSeconds: 60 }, clock: () => Date.now() + 3 * 3600_000 });
      expect((await late.considerRelease(v7.releaseId, "new-release")).code).to.equal("LEDGER_STALE");
    });

    it("REQ-10d-ii: a release signed by a key this device does not pin is refused, naming why", async () => {
      const v8 = await release("acme.bootloader", "1.8.0", [f.devices.a]);
      const pinned = await agentFor(f.devices.a, { pinnedSigners: [Wallet.createRandom().address] });
      await pinned.considerRelease(v1.releaseId, "first install").catch(() => undefined);
      await unmoved(
        () => pinned.considerRelease(v8.releaseId, "new-release"),
        "SIGNER_NOT_PINNED",
        () => agent,
      );
      expect(boot(pinned)).to.equal(undefined); // nothing was installed on the pinning device either
    });

    it("CAP-11.2-d: a notice from an unregistered upstream is refused and starts nothing", async () => {
      const moduleKey = Wallet.createRandom();
      const upstream = keccak256(toUtf8Bytes("agent test module"));
      const a = await agentFor(f.devices.a, { upstream });
      const envelope = await sealMessage(
        {
          kind: NOTICE_KIND,
          from: upstream,
          to: f.devices.a.credential.record.id,
          issuedAt: Date.now(),
          body: { releaseId: v1.releaseId, component: BOOT, reason: "new-release" },
        },
        { kind: "account", signMessage: (m) => moduleKey.signMessage(m) },
        f.devices.a.credential.record.publicKey,
      );
      await expectCode(a.onNotice(envelope), "UPSTREAM_NOT_REGISTERED");
      expect(a.slots.snapshot().components[BOOT]).to.equal(undefined);
    });

    it("REQ-10f-ii finding (issue 15): a content key from the server that is not the release's is a blocked delivery (KEY_MISMATCH), not a failed release", async () => {
      const v7 = await release("acme.bootloader", "1.9.0", [f.devices.a]);
      const me = f.devices.a.credential.record;
      const right = f.db.wrappedKey(v7.releaseId, me.id)!;
      // A compromised server wraps a key of its own for the device: it opens, but it is not the author's.
      const wrong = wrapContentKey(randomBytes(32), Buffer.from(me.publicKey.slice(2), "hex"), keyWrapContext(v7.releaseId, me.id));
      f.db.saveWrappedKeys(v7.releaseId, "a compromised server", [{ deviceId: me.id, wrappedKey: wrong }], Date.now());
      const a = await agentFor(f.devices.a);
      await a.considerRelease(v1.releaseId, "first install");
      await unmoved(
        () => a.considerRelease(v7.releaseId, "new-release"),
        "KEY_MISMATCH",
        () => a,
      );
      expect((await a.statusReport()).lastResult).to.include({ outcome: "blocked", code: "KEY_MISMATCH" });
      // The server serves the author's key again: the release installs from the artifact already verified.
      f.db.saveWrappedKeys(v7.releaseId, "the author", [{ deviceId: me.id, wrappedKey: right }], Date.now());
      expect(await a.retryPending()).to.deep.equal([{ releaseId: v7.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
    });

    it("REQ-10c-ii issue 17: a device out of open files (EMFILE) at any step is a blocked delivery (DEVICE_RESOURCES), tried again, never a rejected or failed release", async () => {
      const a = await agentFor(f.devices.a);
      await a.considerRelease(v1.releaseId, "first install");
      const dataDir = (a as unknown as { o: DeviceAgentOptions }).o.dataDir;
      // Every file the agent opens in its folder fails as in a process at its open-files limit, from
      // the Nth open on: each N stops the update at a later step (the ledger check, the download, the install).
      const open = fsPromises.open;
      let blocked = 0;
      for (const failFrom of [1, 2, 3, 5, 8]) {
        const r = await release("acme.bootloader", `3.${failFrom}.0`, [f.devices.a]);
        let opens = 0;
        fsPromises.open = (async (file: Parameters<typeof open>[0], ...rest: unknown[]) => {
          if (String(file).startsWith(dataDir) && ++opens >= failFrom)
            throw Object.assign(new Error(`EMFILE: too many open files, open '${String(file)}'`), { code: "EMFILE", errno: -24, syscall: "open" });
          return (open as (...a: unknown[]) => ReturnType<typeof open>)(file, ...rest);
        }) as typeof open;
        let out: { outcome: string; code: string };
        try {
          out = await a.considerRelease(r.releaseId, "new-release");
        } finally {
          fsPromises.open = open;
        }
        if (out.outcome === "confirmed") continue; // this many opens did not reach a file the update needs
        expect(out, `failing from open ${failFrom}`).to.deep.include({ outcome: "blocked", code: "DEVICE_RESOURCES" });
        blocked++;
        expect(await a.retryPending(), `failing from open ${failFrom}`).to.deep.include({
          releaseId: r.releaseId.toLowerCase(),
          outcome: "confirmed",
          code: "OK",
        });
      }
      expect(blocked, "updates stopped by EMFILE").to.be.at.least(4);
      expect(boot(a)!.image!.version).to.equal(encodeVersion("3.8.0").toString());
    });
  });

  describe("CAP-11.1-b: safe mode", () => {
    it("a corrupt boot state starts safe mode: the device runs and reports, refuses automatic updates, and takes a manual install only after full verification", async () => {
      const sm = makeDevice("safe-mode-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(sm.credential.record);
      const r = await release("acme.radio-fw", "2.0.0", [sm]);
      const dir = path.join(f.dir, "safe-mode-device");
      const options = {
        dataDir: dir,
        device: sm,
        serverUrl: f.server.url,
        chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0 },
        components: [componentId("acme.radio-fw")],
        policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
        healthCheck: async () => true,
      };
      await (await DeviceAgent.open(options)).slots.nextCounter();
      writeFileSync(path.join(dir, "slots", "boot-state.json"), "{ torn");

      const a = await DeviceAgent.open(options);
      expect(a.safeMode).to.equal(true);
      expect((await a.statusReport()).safeMode).to.equal(true);
      expect((await a.considerRelease(r.releaseId, "new-release")).code).to.equal("SAFE_MODE");

      const tampered = path.join(f.dir, "tampered.otae");
      const bytes = readFileSync(r.artifactFile);
      bytes[bytes.length - 100] ^= 1;
      writeFileSync(tampered, bytes);
      expect((await a.manualInstall(r.releaseId, { file: tampered })).code).to.equal("CHUNK_MISMATCH");
      expect(a.slots.snapshot().components[componentId("acme.radio-fw")]?.slots.a ?? null).to.equal(null);

      expect(await a.manualInstall(r.releaseId, { file: r.artifactFile })).to.include({ outcome: "confirmed", code: "OK" });
      expect(a.safeMode).to.equal(false);
    });
  });

  describe("reporting", () => {
    const moduleKey = new Wallet(keccak256(toUtf8Bytes("agent test tracker module")));
    const moduleId = keccak256(toUtf8Bytes("agent test tracker"));
    let receiver: http.Server;
    let url: string;
    const received: { counter: number; deviceKey: string; body: { lastResult: { code: string } | null; needs: unknown[] } }[] = [];

    before(async () => {
      await f.fleet.connect(f.tracker).registerTrackerModule(moduleId, moduleKey.address, moduleKey.signingKey.compressedPublicKey, ethers.ZeroHash);
      // A stand-in for the tracker's report endpoint (issue 5): it opens each report with the module's key.
      receiver = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
          const { message, signedBy } = openMessage<{ counter: number; lastResult: { code: string } | null; needs: unknown[] }>(
            JSON.parse(body),
            moduleKey.privateKey,
            moduleId,
            "device",
          );
          received.push({ counter: message.body.counter, deviceKey: signedBy, body: message.body });
          res.writeHead(202).end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    });
    after(() => new Promise<void>((r) => receiver.close(() => r())));

    it("PROC-5 CAP-11.1-a-i: sends signed, sealed reports whose counter only rises, across a restart too", async () => {
      const dev = makeDevice("reporting-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const r = await release("acme.radio-fw", "3.0.0", [dev]);
      const tracker = { moduleId, publicKey: moduleKey.signingKey.compressedPublicKey, url };
      const a = await agentFor(dev, { tracker, components: [componentId("acme.radio-fw")] });
      await a.considerRelease(r.releaseId, "new-release");
      const again = await DeviceAgent.open({ ...(a as unknown as { o: DeviceAgentOptions }).o });
      await again.report();
      const mine = received.filter((x) => x.deviceKey === dev.credential.record.publicKey);
      expect(mine.length).to.be.at.least(3);
      for (let i = 1; i < mine.length; i++) expect(mine[i].counter).to.be.above(mine[i - 1].counter);
      expect(mine.some((m) => m.body.lastResult?.code === "OK")).to.equal(true);
    });

    it("CAP-11.1-a-iv: tells its tracker of an update it needs but cannot take yet, takes it once it can, then no longer lists it", async () => {
      const dev = makeDevice("needy-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const r = await release("acme.radio-fw", "5.0.0", []); // no key granted yet
      const a = await agentFor(dev, { components: [componentId("acme.radio-fw")] });
      expect(await a.considerRelease(r.releaseId, "new-release")).to.include({ outcome: "blocked", code: "KEY_NOT_GRANTED" });
      expect((await a.statusReport()).needs).to.deep.equal([{ releaseId: r.releaseId.toLowerCase(), component: r.record.component, reason: "new-release" }]);
      await grantKeys({ registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url }, r.releaseId, {
        deviceIds: [dev.credential.record.id],
      });
      expect(await a.retryPending()).to.deep.equal([{ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
      expect((await a.statusReport()).needs).to.deep.equal([]);
    });

    it("REQ-10c-ii: a release to try again is remembered across a restart (a power cut before the key was granted)", async () => {
      const dev = makeDevice("restarted-needy-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const r = await release("acme.radio-fw", "6.0.0", []);
      const a = await agentFor(dev, { components: [componentId("acme.radio-fw")] });
      expect(await a.considerRelease(r.releaseId, "new-release")).to.include({ code: "KEY_NOT_GRANTED" });
      // The ledger watcher's checkpoint is past the release's event: only the agent's memory brings it back.
      const again = await DeviceAgent.open({ ...(a as unknown as { o: DeviceAgentOptions }).o });
      await grantKeys({ registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url }, r.releaseId, {
        deviceIds: [dev.credential.record.id],
      });
      expect(await again.retryPending()).to.deep.equal([{ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
      expect(await again.retryPending(), "nothing left to retry").to.deep.equal([]);
    });

    it("CAP-11.2-m-b: a notice taken before a restart cannot be replayed after it", async () => {
      const dev = makeDevice("replayed-notice-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const r = await release("acme.radio-fw", "7.0.0", []);
      const tracker = { moduleId, publicKey: moduleKey.signingKey.compressedPublicKey, url };
      const a = await agentFor(dev, { tracker, components: [componentId("acme.radio-fw")] });
      const envelope = await sealMessage(
        {
          kind: NOTICE_KIND,
          from: moduleId,
          to: dev.credential.record.id,
          issuedAt: Date.now(),
          body: { releaseId: r.releaseId, component: componentId("acme.radio-fw"), reason: "new-release" },
        },
        { kind: "account", signMessage: (m) => moduleKey.signMessage(m) },
        dev.credential.record.publicKey,
      );
      expect(await a.onNotice(envelope)).to.include({ code: "KEY_NOT_GRANTED" });
      const again = await DeviceAgent.open({ ...(a as unknown as { o: DeviceAgentOptions }).o });
      await expectCode(again.onNotice(envelope), "NOTICE_REPLAYED");
    });

    it("CAP-11.1-a-vi: reports the updates it declined, with the reason", async () => {
      const report = await agent.statusReport();
      expect(report.declined).to.deep.include({ releaseId: (await f.registry.releaseAt(BOOT, 1)).toLowerCase(), code: "PREVIOUSLY_FAILED" });
    });

    it("CAP-11.1-a-ii: answers a query about its image only to a registered tracker module, sealed to it", async () => {
      const query = (signer: Wallet, from: string) =>
        sealMessage(
          { kind: QUERY_KIND, from, to: f.devices.a.credential.record.id, issuedAt: Date.now(), body: {} },
          { kind: "account", signMessage: (m) => signer.signMessage(m) },
          f.devices.a.credential.record.publicKey,
        );
      const answer = await agent.answerQuery(await query(moduleKey, moduleId));
      const { message } = openMessage<{ installed: { component: string }[] }>(answer, moduleKey.privateKey, moduleId, "device");
      expect(message.body.installed.map((i) => i.component)).to.include(BOOT);
      await expectCode(agent.answerQuery(await query(Wallet.createRandom() as unknown as Wallet, keccak256(toUtf8Bytes("nobody")))), "QUERY_NOT_REGISTERED");
      await expectCode(agent.answerQuery(await query(Wallet.createRandom() as unknown as Wallet, moduleId)), "QUERY_SIGNATURE");
    });

    it("CAP-11.3-g CAP-11.1-a-vi: a device taking security fixes only declines a newer release, then takes it once what it runs is flagged vulnerable (its own ledger events)", async () => {
      const dev = makeDevice("security-only-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const radio = componentId("acme.radio-fw");
      const v8 = await release("acme.radio-fw", "8.0.0", [dev]);
      const first = await agentFor(dev, { components: [radio] });
      expect((await first.considerRelease(v8.releaseId, "new-release")).outcome).to.equal("confirmed");
      // The same device, now taking security fixes only.
      const a = await DeviceAgent.open({
        ...(first as unknown as { o: DeviceAgentOptions }).o,
        policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600, securityOnly: true },
      });
      const v81 = await release("acme.radio-fw", "8.1.0", [dev]);
      expect(await a.onLedgerEvents([{ kind: "published", releaseId: v81.releaseId, component: radio, block: 0 }])).to.deep.equal([
        { releaseId: v81.releaseId.toLowerCase(), outcome: "declined", code: "NOT_A_SECURITY_FIX" },
      ]);
      await (await f.registry.connect(f.admin).flagVulnerable(v8.releaseId, "CVE-2026-8")).wait();
      expect(await a.onLedgerEvents([{ kind: "vulnerable", releaseId: v8.releaseId, component: radio, block: 0 }])).to.deep.equal([
        { releaseId: v81.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" },
      ]);
      // A flag on a release it does not run changes nothing.
      expect(await a.onLedgerEvents([{ kind: "vulnerable", releaseId: v8.releaseId, component: radio, block: 0 }])).to.deep.equal([]);
    });

    it("REQ-10b-i issue 16: after its watcher lost track of the chain (a reorganisation below its window), catchUp asks the ledger and takes the newest good release it never heard of", async () => {
      const dev = makeDevice("catch-up-device", 1);
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const radio = componentId("acme.radio-fw");
      const a = await agentFor(dev, { components: [radio] });
      const newest = await release("acme.radio-fw", "20.0.0", [dev]);
      // No event was delivered for it: only the ledger's answer brings it.
      const outcomes = await a.catchUp();
      expect(outcomes).to.deep.equal([{ releaseId: newest.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
      expect(await a.catchUp(), "running it: nothing more to do").to.deep.equal([]);
    });
  });
});
