import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { Wallet, ZeroHash, encodeBytes32String, keccak256, parseEther, toUtf8Bytes, type BaseContract, type Signer } from "ethers";
import { freePort, startCliChain } from "../agent/cli/cliHarness";
import { CliProcess } from "../e2e/harness/cliProcess";
import { componentId, dependsOn, normalizeRelease, type ReleaseRecord } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { REPORT_KIND, type StatusReport } from "../../agent/core/statusReport";
import { computeReleaseId, registryDomain, signRelease } from "../../agent/crypto/releaseSignature";
import { sealMessage, type Envelope } from "../../agent/crypto/sealedMessage";
import { TrackerModule, type TrackerModuleOptions } from "../../agent/tracker/trackerModule";
import { startTrackerHttp, type RunningTrackerHttp } from "../../agent/tracker/trackerHttp";

export const BOOTLOADER = componentId("acme.bootloader");
export const FIRMWARE = componentId("acme.firmware");

/** A device key and record, derived from a label so runs repeat. */
export function testDevice(label: string, hardwareClass: number, network: string, region = "eu-west") {
  const key = new Wallet(keccak256(toUtf8Bytes(`tracker device key ${label}`)));
  return {
    key,
    record: {
      id: keccak256(toUtf8Bytes(`tracker device ${label}`)),
      publicKey: key.signingKey.compressedPublicKey,
      hardwareClass,
      network: encodeBytes32String(network),
      region: encodeBytes32String(region),
    },
  };
}
export type TestDevice = ReturnType<typeof testDevice>;

/** A chain with the registry, a provider, two hardware classes, two components and a registered server tracker module. */
export async function trackerChain(o: { node?: "hardhat" | "anvil" } = {}) {
  const c = await startCliChain({ node: o.node });
  // ethers answers an identical request from a short cache, so nonces are counted here.
  let nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
  const send = async (tx: (o: { nonce: number }) => Promise<{ wait(): Promise<unknown> }>) => (await tx({ nonce: nonce++ })).wait();
  const r = c.registry.connect(c.admin);
  const f = c.fleet.connect(c.admin);
  await send((o) => r.registerProvider("Acme", o));
  await send((o) => r.addProviderSigner(1, c.admin.address, o));
  await send((o) => r.registerAuthor(c.admin.address, 1, o));
  await send((o) => r.registerHardwareClass("rev-a", o));
  await send((o) => r.registerHardwareClass("rev-b", o));
  await send((o) => r.registerComponent("acme.bootloader", 1, o));
  await send((o) => r.registerComponent("acme.firmware", 1, o));
  await send((o) => r.grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), c.admin.address, o));
  await send((o) => r.grantRole(keccak256(toUtf8Bytes("AUDITOR_ROLE")), c.admin.address, o));
  const domain = registryDomain(31337, String(c.registry.target));
  const fromBlock = 0;

  const publish = async (component: string, version: string, hardware: number[], deps: ReleaseRecord["dependencies"] = []) => {
    const record = normalizeRelease({
      provider: 1,
      component,
      version: encodeVersion(version),
      fileHash: keccak256(toUtf8Bytes(`${component} ${version}`)),
      fileLink: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
      fileName: "image.bin",
      fileSize: 10n,
      merkleRoot: keccak256(toUtf8Bytes(`root ${component} ${version}`)),
      hardware,
      dependencies: deps,
    });
    const signature = await signRelease(c.admin, domain, record);
    const witnesses: string[] = [];
    for (const d of record.dependencies) witnesses.push(await c.registry.findSatisfyingRelease(d.component, d.minVersion, d.maxVersion));
    await send((o) => r.publishRelease(record, c.admin.address, signature, witnesses, o));
    return { id: computeReleaseId(domain, record).toLowerCase(), record, version };
  };
  const enrol = async (devices: TestDevice[]) => {
    for (const d of devices) await send((o) => f.enrolDevice(d.record, o));
  };
  /** Registers a module from the administrator's account, or from `by` (which then owns it: it alone posts its failure totals). */
  const registerModule = async (label: string, parent = ZeroHash, by?: Signer) => {
    const key = new Wallet(keccak256(toUtf8Bytes(`tracker module key ${label}`)));
    const id = keccak256(toUtf8Bytes(`tracker module ${label}`));
    if (by) await (await c.fleet.connect(by).registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, parent)).wait();
    else await send((o) => f.registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, parent, o));
    return { id, privateKey: key.privateKey, publicKey: key.signingKey.compressedPublicKey };
  };
  /** Deploys a contract from the administrator's account, its nonce counted with the other sends. */
  const deploy = async <C extends BaseContract>(make: (o: { nonce: number }) => Promise<C>): Promise<C> => {
    const contract = await make({ nonce: nonce++ });
    await contract.waitForDeployment();
    return contract;
  };
  /** A fresh account with gas, and TRACKER_ROLE unless told otherwise: a tracker's ledger account. */
  const ledgerAccount = async (o: { trackerRole?: boolean } = {}) => {
    const account = Wallet.createRandom().connect(c.provider);
    await send((n) => c.admin.sendTransaction({ to: account.address, value: parseEther("10"), ...n }));
    if (o.trackerRole !== false) await send((n) => r.grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), account.address, n));
    return account;
  };
  /** After a reorganisation dropped the administrator's transactions: the next nonce is read from the node again. */
  const recountNonce = async () => {
    nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "latest"]));
  };
  return { c, registry: r, fleet: f, send, deploy, ledgerAccount, domain, fromBlock, publish, enrol, registerModule, recountNonce };
}
export type TrackerChain = Awaited<ReturnType<typeof trackerChain>>;

/** Starts a tracker module and its HTTP API on 127.0.0.1. */
export async function startTracker(
  t: TrackerChain,
  module: { id: string; privateKey: string },
  o: Partial<TrackerModuleOptions> & { apiToken?: string } = {},
): Promise<{ tracker: TrackerModule; http: RunningTrackerHttp; dir: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), "ota-tracker-"));
  const tracker = new TrackerModule({
    chain: { provider: t.c.provider, registry: t.c.registry, fleet: t.c.fleet, domain: t.domain, fromBlock: t.fromBlock },
    module,
    dataDir: dir,
    pollMs: 200,
    ...o,
  });
  await tracker.start();
  const http = await startTrackerHttp(tracker, { apiToken: o.apiToken });
  return {
    tracker,
    http,
    dir,
    stop: async () => {
      await http.close();
      await tracker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `ota-ledger tracker start` on `dataDir` in a process of its own, as an operator runs it; resolved once it listens. */
export async function startTrackerProcess(
  t: TrackerChain,
  module: { id: string; privateKey: string },
  dataDir: string,
): Promise<{ process: CliProcess; url: string }> {
  const port = await freePort();
  const child = new CliProcess("tracker", ["tracker", "start"], {
    cwd: t.c.dir,
    env: {
      OTA_RPC_URL: t.c.url,
      OTA_TRACKER_MODULE: module.id,
      OTA_TRACKER_PRIVATE_KEY: module.privateKey,
      OTA_TRACKER_DATA: dataDir,
      OTA_TRACKER_PORT: String(port),
    },
  });
  await child.waitForLine(/tracker module 0x[0-9a-f]+ .* on http/, { timeoutMs: 60_000 });
  return { process: child, url: `http://127.0.0.1:${port}` };
}

let counters = new Map<string, number>();

/** A device's sealed status report to a module, with a fresh counter. */
export async function sealedReport(
  d: TestDevice,
  module: { id: string; publicKey: string },
  installed: { component: string; release: { id: string; version: string } }[],
  lastResult: StatusReport["lastResult"] = null,
  counter?: number,
  credential?: StatusReport["credential"],
): Promise<Envelope> {
  const n = counter ?? (counters.get(d.record.id) ?? 0) + 1;
  counters.set(d.record.id, Math.max(n, counters.get(d.record.id) ?? 0));
  const report: StatusReport = {
    deviceId: d.record.id,
    counter: n,
    installed: installed.map((i) => ({
      component: i.component,
      version: encodeVersion(i.release.version).toString(),
      releaseId: i.release.id,
      slot: "a" as const,
    })),
    lastResult,
    needs: [],
    declined: [],
    safeMode: false,
    ...(credential ? { credential } : {}),
  };
  return sealMessage(
    { kind: REPORT_KIND, from: d.record.id, to: module.id, issuedAt: Date.now(), body: report },
    { kind: "device", privateKey: d.key.privateKey },
    module.publicKey,
  );
}
export function resetReportCounters(): void {
  counters = new Map();
}

export async function postReport(
  url: string,
  envelope: Envelope,
): Promise<{ status: number; body: { accepted?: boolean; notices?: Envelope[]; error?: { code: string } } }> {
  const res = await fetch(new URL("/v1/reports", url), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(envelope) });
  return { status: res.status, body: (await res.json()) as never };
}

export interface SeededTracker {
  url: string;
  close(): Promise<void>;
  devices: { id: string; statuses: string[]; network: string }[];
  releases: { id: string; version: string }[];
  tracker: TrackerModule;
  /** The tracker's Fastify app (its routes), and the registry's administrator (update requests). */
  app: FastifyInstance;
  admin: Wallet;
}

/**
 * A real tracker (server module) on a real chain, its fleet in every status: up to date,
 * outdated, vulnerable (and outdated), failed, never heard from (unreachable) and suspended; two
 * networks; a rollout under way and adoption sampled over three waves of reports.
 */
export async function startSeededTracker(o: { apiToken?: string } = {}): Promise<SeededTracker> {
  const t = await trackerChain();
  const module = await t.registerModule("seeded server");
  const boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
  const boot11 = await t.publish(BOOTLOADER, "1.1.0", [1, 2]);
  const fw2 = await t.publish(FIRMWARE, "2.0.0", [1], [dependsOn(BOOTLOADER, "^1.0.0")]);
  const plan: { label: string; hw: number; network: string; statuses: string[] }[] = [
    { label: "ok-1", hw: 1, network: "plant-1", statuses: ["up-to-date"] },
    { label: "ok-2", hw: 2, network: "plant-2", statuses: ["up-to-date"] },
    { label: "old-1", hw: 1, network: "plant-1", statuses: ["outdated", "vulnerable"] },
    { label: "old-2", hw: 2, network: "plant-2", statuses: ["outdated", "vulnerable"] },
    { label: "old-3", hw: 2, network: "plant-1", statuses: ["outdated", "vulnerable"] },
    { label: "fail-1", hw: 1, network: "plant-2", statuses: ["failed"] },
    { label: "silent-1", hw: 1, network: "plant-1", statuses: ["unreachable"] },
    { label: "silent-2", hw: 2, network: "plant-2", statuses: ["unreachable"] },
    { label: "stolen-1", hw: 1, network: "plant-1", statuses: ["suspended"] },
  ];
  const devices = plan.map((p) => ({ ...p, d: testDevice(`seeded ${p.label}`, p.hw, p.network) }));
  await t.enrol(devices.map((d) => d.d));
  await t.send((o) => t.fleet.suspendDevice(devices.find((d) => d.label === "stolen-1")!.d.record.id, "reported stolen", o));
  const started = await startTracker(t, module, { apiToken: o.apiToken, adoptionSampleMs: 3_600_000 });
  const { tracker, http } = started;
  await tracker.stream.pollOnce();
  const pub = { id: module.id, publicKey: module.publicKey };
  const installed = (boot: typeof boot1, withFw: boolean) => [
    { component: BOOTLOADER, release: boot },
    ...(withFw ? [{ component: FIRMWARE, release: fw2 }] : []),
  ];
  // Three waves: everyone on 1.0.0; then some move to 1.1.0; then the last ones.
  const waves: Record<string, typeof boot1>[] = [
    { "ok-1": boot1, "ok-2": boot1, "old-1": boot1, "old-2": boot1, "old-3": boot1, "fail-1": boot1 },
    { "ok-1": boot11 },
    { "ok-2": boot11, "fail-1": boot11 },
  ];
  for (const wave of waves) {
    for (const [label, boot] of Object.entries(wave)) {
      const d = devices.find((x) => x.label === label)!;
      const result =
        label === "fail-1" && boot === boot11
          ? { releaseId: fw2.id, component: FIRMWARE, outcome: "rolled-back", code: "HEALTH_CHECK_FAILED", at: Date.now() }
          : null;
      const res = await postReport(http.url, await sealedReport(d.d, pub, installed(boot, label === "ok-1" && boot === boot11), result));
      if (res.status !== 200) throw new Error(`seeding: report of ${label} answered ${res.status} ${JSON.stringify(res.body)}`);
    }
    tracker.sampleAdoption();
    await new Promise((r) => setTimeout(r, 5));
  }
  // An advisory on 1.0.0: the devices still on it are vulnerable, and told to move to 1.1.0.
  await t.send((o) => t.registry.flagVulnerable(boot1.id, "CVE-2026-0001", o));
  await tracker.stream.pollOnce();
  return {
    url: http.url,
    tracker,
    app: http.app,
    admin: t.c.admin,
    close: async () => {
      await started.stop();
      await t.c.stop();
    },
    devices: devices.map((d) => ({ id: d.d.record.id.toLowerCase(), statuses: d.statuses, network: d.network })),
    releases: [boot1, boot11, fw2].map((r) => ({ id: r.id, version: r.version })),
  };
}
