/**
 * The status tracker at fleet scale (issue 5, ADR 0004), on this machine:
 *
 *   decision latency: with BENCH_DEVICES devices in the fleet database, the time from a new
 *     ReleasePublished log handed to the LedgerMirror to the decided set (affected configurations
 *     and their active device count), through the tracker's own path: LedgerMirror.apply (decode,
 *     release id check, ledger_events, releases) -> FleetPlanner.catalogueChanged ->
 *     FleetPlanner.affectedBy. Then, apart, the time to read the affected device ids
 *     (FleetStore.configs.activeDevicesIn). Once on a fleet of a few hundred configurations, once on
 *     one of about 10,000 (the cost follows configurations, not devices).
 *   report intake: real sealed status reports (ECIES to the module's key, signed by each
 *     device's own key), opened, checked against the enrolled key and stored durably (WAL,
 *     synchronous FULL, as the fleet database sets) by agent/tracker/reportIntake: one report per
 *     transaction (takeSealedReport), several per transaction (takeSealedReports), and as the
 *     tracker takes them (ReportIntake: concurrent arrivals, worker threads, batched commits).
 *     Then the same devices' next reports under their report sessions (issue 17, ADR 0013: one
 *     AES-GCM each, no ECDH nor signature), through ReportIntake again: the figure beside the
 *     old one. The sessions are made as the devices' full reports make them (offer, key, wrap),
 *     written directly: setup, not measured.
 *   memory: peak RSS, and the database's size on disk (file + WAL).
 *
 *   npm run bench:tracker                              1,000,000 devices
 *   BENCH_DEVICES=20000 npm run bench:tracker          a quick run
 *   npm run bench:tracker -- --json                    one JSON document
 *   BENCH_REPORTS=n BENCH_ROUNDS=n BENCH_BATCH=n       reports sealed, decision rounds, reports per transaction
 *   BENCH_KEEP=1                                       keep the databases (the path is printed)
 *
 * Setup (the population written with bulk INSERTs in large transactions, device keys made and
 * reports sealed as devices would) is timed apart and is not a measured figure. Devices that do
 * not report in the run get a placeholder public key: only the reporting ones need a real one.
 */
import { createECDH, createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Interface, Wallet, encodeBytes32String } from "ethers";
import { UpdateRegistry__factory } from "../typechain-types";
import Database from "../agent/database/sqlite";
import { FleetStore } from "../agent/tracker/store";
import { FleetPlanner } from "../agent/tracker/fleetPlanner";
import { LedgerMirror } from "../agent/tracker/ledgerMirror";
import { ReportIntake, takeSealedReport, takeSealedReports } from "../agent/tracker/reportIntake";
import type { StreamBatch } from "../agent/chain/eventStream";
import { computeReleaseId, registryDomain, signRelease } from "../agent/crypto/releaseSignature";
import { openMessage, sealMessage, type Envelope } from "../agent/crypto/sealedMessage";
import {
  newSessionOffer,
  openWithSession,
  sealWithSession,
  sessionKey,
  sessionRestKey,
  unwrapSessionKey,
  wrapSessionKey,
  type SessionEnvelope,
} from "../agent/crypto/reportSession";
import { eciesOpen } from "../agent/crypto/ecies";
import { componentId, normalizeRelease, type Dependency, type ReleaseRecord } from "../agent/core/release";
import { REPORT_KIND, type StatusReport } from "../agent/core/statusReport";
import { encodeVersion } from "../agent/core/version";
import { median, peakRssMiB, round } from "./lib/measure";

const MiB = 1024 * 1024;
const json = process.argv.includes("--json") || process.env.BENCH_JSON === "1";
const DEVICES = Number(process.env.BENCH_DEVICES ?? 1_000_000);
const REPORTS = Math.min(DEVICES, Number(process.env.BENCH_REPORTS ?? Math.min(20_000, Math.max(1_000, Math.floor(DEVICES / 10)))));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const BATCH = Number(process.env.BENCH_BATCH ?? 200);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 1000);
const KEEP = process.env.BENCH_KEEP === "1";

const REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const FLEET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const domain = registryDomain(31337, REGISTRY);
const author = new Wallet("0x" + "a1".repeat(32));
const moduleKey = new Wallet("0x" + "b2".repeat(32));
const MODULE_ID = "0x" + createHash("sha256").update("bench tracker module").digest("hex");
const NETWORKS = ["north", "south"].map((n) => encodeBytes32String(n).toLowerCase());
const REGIONS = ["eu-west", "eu-central", "us-east", "ap-south"].map((n) => encodeBytes32String(n).toLowerCase());

const log = (line: string) => {
  if (!json) console.error(line);
};
const ms = (t0: number) => performance.now() - t0;
const sha = (s: string) => "0x" + createHash("sha256").update(s).digest("hex");

/** A small deterministic PRNG (mulberry32), so that two runs build the same fleet. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- the catalogue

interface ComponentSpec {
  name: string;
  hardware: number[]; // the hardware classes it runs on
  versions: number; // releases already published (and installed somewhere)
  depends?: { name: string; from: number }; // each release needs that component at >= its version `from` (index), < next major
}
interface FleetShape {
  label: string;
  components: ComponentSpec[];
  failedShare: number; // share of configurations that also carry a failed release
}

// A few hundred configurations: 3 hardware classes, 2 networks, 4 components.
const SMALL: FleetShape = {
  label: "few hundred configurations",
  components: [
    { name: "acme.bootloader", hardware: [1, 2, 3], versions: 4 },
    { name: "acme.kernel", hardware: [1, 2, 3], versions: 4, depends: { name: "acme.bootloader", from: 0 } },
    { name: "acme.app", hardware: [1, 2, 3], versions: 3, depends: { name: "acme.kernel", from: 1 } },
    { name: "acme.modem", hardware: [2, 3], versions: 2, depends: { name: "acme.kernel", from: 0 } },
  ],
  failedShare: 0.25,
};
// About 10,000 configurations: more versions of the same components live side by side.
const LARGE: FleetShape = {
  label: "~10,000 configurations",
  components: [
    { name: "acme.bootloader", hardware: [1, 2, 3], versions: 8 },
    { name: "acme.kernel", hardware: [1, 2, 3], versions: 10, depends: { name: "acme.bootloader", from: 0 } },
    { name: "acme.app", hardware: [1, 2, 3], versions: 12, depends: { name: "acme.kernel", from: 1 } },
    { name: "acme.modem", hardware: [2, 3], versions: 4, depends: { name: "acme.kernel", from: 0 } },
  ],
  failedShare: 0.15,
};

const versionText = (i: number) => `1.${i}.0`;

interface Published {
  id: string;
  record: ReleaseRecord;
}

function releaseRecord(spec: ComponentSpec, i: number, hardware = spec.hardware): ReleaseRecord {
  const dependencies: Dependency[] = spec.depends
    ? [{ component: componentId(spec.depends.name), minVersion: encodeVersion(versionText(spec.depends.from)), maxVersion: encodeVersion("2.0.0") }]
    : [];
  return normalizeRelease({
    provider: 1,
    component: componentId(spec.name),
    version: encodeVersion(versionText(i)),
    fileHash: sha(`${spec.name} ${i} image`),
    fileLink: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    fileName: `${spec.name}-${versionText(i)}.bin`,
    fileSize: 4_194_304n,
    merkleRoot: sha(`${spec.name} ${i} root`),
    hardware,
    dependencies,
  });
}

// ---------------------------------------------------------------- the population

interface Fleet {
  dir: string;
  file: string;
  db: FleetStore;
  shape: FleetShape;
  catalogue: Map<string, Published[]>; // component name -> releases, oldest first
  configs: number;
  reporters: { id: string; privateKey: string; hardwareClass: number; installed: StatusReport["installed"] }[];
  setupMs: Record<string, number>;
}

/**
 * Builds a fleet database of `devices` devices spread over the configurations of `shape`
 * (skewed: a few configurations hold most devices, as in a real fleet), with their installed
 * components, through bulk INSERTs. `reporters` devices, evenly spread, get real keys.
 */
function buildFleet(shape: FleetShape, devices: number, reporters: number, seed: number): Fleet {
  const setupMs: Record<string, number> = {};
  const dir = mkdtempSync(path.join(os.tmpdir(), "ota-bench-tracker-"));
  const file = path.join(dir, "fleet.db");
  let db = new FleetStore(file);
  const rnd = prng(seed);

  // Releases: every installed version is a release on the ledger; one old kernel is flagged.
  let t = performance.now();
  const catalogue = new Map<string, Published[]>();
  let block = 100;
  db.transaction(() => {
    for (const spec of shape.components) {
      const list: Published[] = [];
      for (let i = 0; i < spec.versions; i++) {
        const record = releaseRecord(spec, i);
        const id = computeReleaseId(domain, record).toLowerCase();
        db.catalogue.upsertRelease({
          id,
          component: record.component,
          provider: 1,
          version: record.version,
          hardware: record.hardware,
          status: "active",
          blockHash: sha(`block ${block}`),
          logIndex: 0,
          record,
          publishedAt: block++,
        });
        list.push({ id, record });
      }
      catalogue.set(spec.name, list);
    }
    db.catalogue.setReleaseStatus(catalogue.get("acme.kernel")![0].id, "vulnerable");
  });

  // Configurations: every combination of installed versions per hardware class (a component
  // absent on hardware it does not run on), some with a failed release.
  type Combo = { hw: number; installed: { component: string; version: bigint; releaseId: string }[]; failed: string | null; id: number };
  const combos: Combo[] = [];
  for (const hw of [1, 2, 3]) {
    let sets: Combo["installed"][] = [[]];
    for (const spec of shape.components) {
      if (!spec.hardware.includes(hw)) continue;
      const next: Combo["installed"][] = [];
      for (const s of sets)
        for (const p of catalogue.get(spec.name)!)
          next.push([...s, { component: p.record.component.toLowerCase(), version: p.record.version, releaseId: p.id }]);
      sets = next;
    }
    for (const installed of sets) combos.push({ hw, installed, failed: null, id: 0 });
  }
  const withFailed = Math.round(combos.length * shape.failedShare);
  for (let i = 0; i < withFailed; i++) {
    const base = combos[Math.floor(rnd() * combos.length)];
    const app = catalogue.get("acme.app")!;
    combos.push({ ...base, failed: app[app.length - 1].id });
  }
  db.transaction(() => {
    for (const c of combos) c.id = db.configs.of(c.hw, c.installed, c.failed);
  });
  // Skewed: configuration k holds about as many devices as 1/(k+1)^0.9 of them.
  const weights = combos.map((_, k) => 1 / Math.pow(k + 1, 0.9));
  const order = combos.map((_, k) => k).sort(() => rnd() - 0.5); // which combination is popular: random
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w));
  const pick = () => {
    const x = rnd() * sum;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return combos[order[lo]];
  };
  setupMs.catalogueAndConfigs = ms(t);

  // Devices, in id order (the primary key's order: the B-tree fills from the left).
  t = performance.now();
  const ids: string[] = new Array(devices);
  for (let i = 0; i < devices; i++) ids[i] = sha(`device ${seed} ${i}`);
  ids.sort();
  const reporterEvery = Math.max(1, Math.floor(devices / Math.max(1, reporters)));
  const reporterList: Fleet["reporters"] = [];
  const now = Date.now();
  // Bulk INSERTs on a connection of their own (the store's is private), then the store is opened
  // again with SQLite's default page cache, as this benchmark has always measured.
  db.close();
  const bulk = new Database(file);
  const insDevice = bulk.prepare(
    `INSERT INTO devices (id, public_key, hardware_class, network, region, standing, last_seen, last_counter, last_outcome, last_code, config_id, failed_release, upstream)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insInstalled = bulk.prepare(`INSERT INTO installed (device_id, component, version, release_id) VALUES (?, ?, ?, ?)`);
  bulk.pragma("cache_size = -262144"); // 256 MiB for the bulk load only
  const CHUNK = 50_000;
  for (let start = 0; start < devices; start += CHUNK) {
    bulk.transaction(() => {
      for (let i = start; i < Math.min(devices, start + CHUNK); i++) {
        const c = pick();
        const reporter = i % reporterEvery === 0 && reporterList.length < reporters;
        let publicKey = "0x02" + ids[i].slice(2); // placeholder: this device does not report in the run
        if (reporter) {
          const ecdh = createECDH("secp256k1");
          ecdh.generateKeys();
          publicKey = "0x" + ecdh.getPublicKey("hex", "compressed");
          reporterList.push({
            id: ids[i],
            privateKey: "0x" + ecdh.getPrivateKey("hex").padStart(64, "0"),
            hardwareClass: c.hw,
            installed: c.installed.map((x) => ({ component: x.component, version: x.version.toString(), releaseId: x.releaseId, slot: "a" as const })),
          });
        }
        const r = rnd();
        const standing = r < 0.005 && !reporter ? "suspended" : "active";
        const lastSeen = now - Math.floor(rnd() * (r < 0.03 ? 6 * 3_600_000 : 900_000)); // ~3% unreachable
        insDevice.run(
          ids[i],
          publicKey,
          c.hw,
          NETWORKS[i % 2],
          REGIONS[Math.floor(rnd() * REGIONS.length)],
          standing,
          lastSeen,
          10,
          c.failed ? "rolled-back" : "confirmed",
          c.failed ? "HEALTH_CHECK_FAILED" : "OK",
          c.id,
          c.failed,
          MODULE_ID,
        );
        for (const x of c.installed) insInstalled.run(ids[i], x.component, x.version.toString(), x.releaseId);
      }
    })();
  }
  bulk.pragma("wal_checkpoint(TRUNCATE)");
  bulk.exec("ANALYZE");
  const configs = bulk.prepare(`SELECT COUNT(DISTINCT config_id) FROM devices`).pluck().get() as number;
  bulk.close();
  db = new FleetStore(file, { cacheKiB: 2000 }); // SQLite's default
  setupMs.devices = ms(t);
  return { dir, file, db, shape, catalogue, configs, reporters: reporterList, setupMs };
}

function diskMiB(file: string): number {
  let bytes = 0;
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      bytes += statSync(f).size;
    } catch {
      // absent
    }
  }
  return round(bytes / MiB);
}

// ---------------------------------------------------------------- decision latency

const registryInterface = new Interface(UpdateRegistry__factory.abi);

/** A ReleasePublished log as the registry emits it, in a one-block batch of the event stream. */
async function publishedBatch(record: ReleaseRecord, blockNumber: number): Promise<{ id: string; batch: StreamBatch }> {
  const id = computeReleaseId(domain, record);
  const signature = await signRelease(author, domain, record);
  const { data, topics } = registryInterface.encodeEventLog("ReleasePublished", [
    id,
    record.component,
    record.provider,
    record.version,
    Math.floor(Date.now() / 1000),
    "Acme",
    { ...record, dependencies: record.dependencies.map((d) => ({ ...d })) },
    author.address,
    signature,
  ]);
  const hash = sha(`bench block ${blockNumber}`);
  return {
    id: id.toLowerCase(),
    batch: {
      fromBlock: blockNumber,
      toBlock: blockNumber,
      blocks: [
        {
          number: blockNumber,
          hash,
          logs: [
            { address: REGISTRY, topics, data, blockNumber, blockHash: hash, transactionHash: sha(`tx ${blockNumber}`), transactionIndex: 0, logIndex: 0 },
          ],
        },
      ],
      checkpoint: { block: blockNumber, hash, window: [{ number: blockNumber, hash, logs: [0] }] },
    },
  };
}

interface Round {
  release: string;
  hardware: number[];
  decideMs: number; // apply() start to the decided set
  applyMs: number; // of which: the mirror's own transaction (decode, id check, store)
  configs: number;
  devices: number;
  materialiseMs: number; // reading the affected device ids
  materialised: number;
}

/**
 * ROUNDS new releases, each a ReleasePublished log through the mirror into the planner:
 * alternately an app release for every hardware class (nearly every device is affected), a kernel
 * release for classes 1 and 2 that needs a newer bootloader, and a modem release for classes 2-3.
 */
async function decisionRounds(fleet: Fleet): Promise<{ rounds: Round[]; breakdown: Record<string, number> }> {
  const planner = new FleetPlanner(fleet.db);
  let decided: { configs: number[]; devices: number } | undefined;
  let releaseId = "";
  let applyEnd = 0;
  const mirror = new LedgerMirror(fleet.db, { registry: REGISTRY, fleet: FLEET, domain }, (changed) => {
    applyEnd = performance.now();
    if (!changed.releases) return;
    planner.catalogueChanged();
    decided = planner.affectedBy(releaseId);
  });
  // Plans are warm before the first event, as in a running tracker (they are dropped by it anyway).
  planner.planAll();
  const specs = new Map(fleet.shape.components.map((c) => [c.name, c]));
  const next = new Map(fleet.shape.components.map((c) => [c.name, c.versions]));
  const plan = [
    { name: "acme.app", hardware: [1, 2, 3] },
    { name: "acme.kernel", hardware: [1, 2], needs: "acme.bootloader" },
    { name: "acme.modem", hardware: [2, 3] },
  ];
  const rounds: Round[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const p = plan[k % plan.length];
    const spec = specs.get(p.name)!;
    const i = next.get(p.name)!;
    next.set(p.name, i + 1);
    let record = releaseRecord(spec, i, p.hardware);
    if (p.needs) {
      // The kernel needs the newest bootloader: a dependency step for most devices.
      const boot = specs.get(p.needs)!;
      record = normalizeRelease({
        ...record,
        dependencies: [{ component: componentId(p.needs), minVersion: encodeVersion(versionText(boot.versions - 1)), maxVersion: encodeVersion("2.0.0") }],
      });
    }
    const { id, batch } = await publishedBatch(record, 10_000 + k);
    releaseId = id;
    decided = undefined;
    const t0 = performance.now();
    mirror.apply(batch);
    const decideMs = ms(t0);
    if (!decided) throw new Error(`release ${id} was not decided: the mirror did not take the log`);
    const d = decided as { configs: number[]; devices: number };
    const t1 = performance.now();
    let materialised = 0;
    for (const _id of fleet.db.configs.activeDevicesIn(d.configs)) materialised++;
    const materialiseMs = ms(t1);
    if (materialised !== d.devices) throw new Error(`the decided set counts ${d.devices} devices but ${materialised} were read`);
    rounds.push({
      release: `${p.name}@${versionText(i)}`,
      hardware: p.hardware,
      decideMs,
      applyMs: applyEnd - t0,
      configs: d.configs.length,
      devices: d.devices,
      materialiseMs,
      materialised,
    });
    log(
      `  ${p.name}@${versionText(i)} hw ${p.hardware.join(",")}: decided in ${round(decideMs)} ms (mirror ${round(applyEnd - t0)} ms): ${d.configs.length} configurations, ${d.devices} devices; ids read in ${round(materialiseMs)} ms`,
    );
  }
  // Where the time goes, each piece alone (outside the measured rounds).
  const breakdown: Record<string, number> = {};
  let t = performance.now();
  fleet.db.configs.all();
  breakdown["FleetStore.configs.all() ms"] = round(ms(t));
  t = performance.now();
  fleet.db.configs.activeCounts();
  breakdown["FleetStore.configs.activeCounts() ms"] = round(ms(t));
  planner.catalogueChanged();
  t = performance.now();
  planner.planAll();
  breakdown["FleetPlanner.planAll() cold ms"] = round(ms(t));
  t = performance.now();
  planner.planAll();
  breakdown["FleetPlanner.planAll() warm ms"] = round(ms(t));
  return { rounds, breakdown };
}

// ---------------------------------------------------------------- report intake

/** Each reporting device's next report, sealed to the module as the device agent does; 1 in 5 moved its app on. */
async function sealReports(fleet: Fleet): Promise<Envelope[]> {
  const apps = fleet.catalogue.get("acme.app")!;
  const appComponent = componentId("acme.app").toLowerCase();
  const rnd = prng(7);
  const out: Envelope[] = [];
  for (const d of fleet.reporters) {
    let installed = d.installed;
    let lastResult: StatusReport["lastResult"] = null;
    if (rnd() < 0.2) {
      const newest = apps[apps.length - 1];
      installed = installed.map((x) => (x.component === appComponent ? { ...x, version: newest.record.version.toString(), releaseId: newest.id } : x));
      lastResult = { releaseId: newest.id, component: appComponent, outcome: "confirmed", code: "OK", at: Date.now() };
    }
    const body: StatusReport = { deviceId: d.id, counter: 11, installed, lastResult, needs: [], declined: [], safeMode: false };
    out.push(
      await sealMessage(
        { kind: REPORT_KIND, from: d.id, to: MODULE_ID, issuedAt: Date.now(), body },
        { kind: "device", privateKey: d.privateKey },
        moduleKey.signingKey.compressedPublicKey,
      ),
    );
  }
  return out;
}

interface IntakeFigures {
  reports: number;
  seconds: number;
  perSecond: number;
  refused: number;
}

function intakeOneByOne(fleet: Fleet, envelopes: Envelope[]): IntakeFigures {
  const me = { id: MODULE_ID, privateKey: moduleKey.privateKey };
  let refused = 0;
  const t = performance.now();
  for (const e of envelopes) {
    try {
      takeSealedReport(fleet.db, e, me, Date.now());
    } catch {
      refused++;
    }
  }
  const seconds = ms(t) / 1000;
  return { reports: envelopes.length, seconds: round(seconds), perSecond: Math.round(envelopes.length / seconds), refused };
}

function intakeBatched(fleet: Fleet, envelopes: Envelope[]): IntakeFigures {
  const me = { id: MODULE_ID, privateKey: moduleKey.privateKey };
  let refused = 0;
  const t = performance.now();
  for (let i = 0; i < envelopes.length; i += BATCH) {
    for (const r of takeSealedReports(fleet.db, envelopes.slice(i, i + BATCH), me, Date.now())) if (!r.ok) refused++;
  }
  const seconds = ms(t) / 1000;
  return { reports: envelopes.length, seconds: round(seconds), perSecond: Math.round(envelopes.length / seconds), refused };
}

/**
 * The tracker's intake as its HTTP handler uses it (ReportIntake): reports arriving concurrently,
 * `inFlight` at a time (devices waiting for their answer), opened on worker threads, stored in
 * batches; every report's promise settles after its batch is committed.
 */
async function intakeConcurrent(fleet: Fleet, envelopes: Envelope[], inFlight: number, workers?: number): Promise<IntakeFigures & { workers: number }> {
  const intake = new ReportIntake(fleet.db, { id: MODULE_ID, privateKey: moduleKey.privateKey }, Date.now, { workers, maxBatch: BATCH });
  await intake.start();
  await intake.take(envelopes[0]); // not counted: warms the threads up
  const rest = envelopes.slice(1);
  let refused = 0;
  let next = 0;
  const t = performance.now();
  const device = async () => {
    while (next < rest.length) {
      const e = rest[next++];
      await intake.take(e).catch(() => refused++);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, device));
  const seconds = ms(t) / 1000;
  await intake.close();
  const n = workers ?? os.availableParallelism?.() ?? os.cpus().length;
  return { reports: rest.length, seconds: round(seconds), perSecond: Math.round(rest.length / seconds), refused, workers: n };
}

/**
 * Each reporting device's report session with the module, as its full report would open it (the
 * offer's secret, the derived key, wrapped under the module key), written directly (setup); and
 * its next report sealed under it (device side). Not measured.
 */
function sessionReports(fleet: Fleet, counter: number): { envelopes: SessionEnvelope[]; keys: Buffer[] } {
  const restKey = sessionRestKey(moduleKey.privateKey);
  const modulePublicKey = moduleKey.signingKey.compressedPublicKey.toLowerCase();
  const envelopes: SessionEnvelope[] = [];
  const keys: Buffer[] = [];
  fleet.db.transaction(() => {
    for (const d of fleet.reporters) {
      const offer = newSessionOffer();
      const key = sessionKey(offer.secret, offer.id, d.id, MODULE_ID);
      const row = fleet.db.devices.get(d.id)!;
      fleet.db.sessions.put({
        deviceId: d.id,
        sessionId: offer.id,
        wrappedKey: wrapSessionKey(key, restKey, d.id.toLowerCase(), offer.id),
        deviceKey: row.publicKey,
        moduleKey: modulePublicKey,
        establishedAt: Date.now(),
      });
      const body: StatusReport = { deviceId: d.id, counter, installed: d.installed, lastResult: null, needs: [], declined: [], safeMode: false };
      envelopes.push(sealWithSession({ kind: REPORT_KIND, from: d.id, to: MODULE_ID, issuedAt: Date.now(), body }, { id: offer.id, key }));
      keys.push(key);
    }
  });
  return { envelopes, keys };
}

/** The session path through ReportIntake: concurrent arrivals, opened in the commit (no thread needed), batched commits. */
async function sessionIntake(fleet: Fleet, envelopes: SessionEnvelope[], inFlight: number, workers = 0): Promise<IntakeFigures & { workers: number }> {
  const intake = new ReportIntake(fleet.db, { id: MODULE_ID, privateKey: moduleKey.privateKey }, Date.now, { workers, maxBatch: BATCH });
  await intake.start();
  await intake.take(envelopes[0]); // not counted
  const rest = envelopes.slice(1);
  let refused = 0;
  let next = 0;
  const t = performance.now();
  const device = async () => {
    while (next < rest.length) await intake.take(rest[next++]).catch(() => refused++);
  };
  await Promise.all(Array.from({ length: inFlight }, device));
  const seconds = ms(t) / 1000;
  await intake.close();
  return { reports: rest.length, seconds: round(seconds), perSecond: Math.round(rest.length / seconds), refused, workers };
}

/** Where a session report's time goes: the session row, the unwrap, the AES-GCM open (not stored). */
function sessionBreakdown(fleet: Fleet, envelopes: SessionEnvelope[], keys: Buffer[]): Record<string, number> {
  const restKey = sessionRestKey(moduleKey.privateKey);
  let t = performance.now();
  for (const e of envelopes) {
    const row = fleet.db.sessions.get(e.from)!;
    unwrapSessionKey(row.wrappedKey, restKey, row.deviceId, row.sessionId);
  }
  const lookup = (ms(t) * 1000) / envelopes.length;
  t = performance.now();
  envelopes.forEach((e, i) => openWithSession(e, keys[i]));
  const open = (ms(t) * 1000) / envelopes.length;
  return {
    "session row + key unwrap (uncached: a session's first report) us/report": round(lookup),
    "AES-GCM open + JSON us/report": round(open),
  };
}

/** Where one report's time goes: the same work, piece by piece, on copies that are not stored. */
function intakeBreakdown(fleet: Fleet, envelopes: Envelope[]): Record<string, number> {
  const key = Buffer.from(moduleKey.privateKey.slice(2), "hex");
  let t = performance.now();
  // The ECIES layer alone, with the context and info sealedMessage.ts uses (v1|kind|from|to).
  for (const e of envelopes)
    eciesOpen(
      Buffer.from(e.sealed.slice(2), "hex"),
      key,
      Buffer.from(`v1|${e.kind}|${e.from.toLowerCase()}|${e.to.toLowerCase()}`),
      "OTA Ledger sealed message v1",
      "MESSAGE",
    );
  const ecies = (ms(t) * 1000) / envelopes.length;
  t = performance.now();
  for (const e of envelopes) openMessage(e, moduleKey.privateKey, MODULE_ID, "device");
  const open = (ms(t) * 1000) / envelopes.length;
  // One empty transaction with synchronous FULL: the commit (WAL write + fsync) alone.
  const n = 500;
  t = performance.now();
  for (let i = 0; i < n; i++) fleet.db.transaction(() => fleet.db.marks.raise("bench commit", i + 1)); // one row written each
  const commit = (ms(t) * 1000) / n;
  return {
    "ECIES open (ECDH secp256k1 + HKDF + AES-GCM) us/report": Math.round(ecies),
    "signature recovery (secp256k1, in openMessage) us/report": Math.round(open - ecies),
    "openMessage total us/report": Math.round(open),
    "one SQLite commit (WAL, synchronous FULL) us": Math.round(commit),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const baseline = peakRssMiB();
  const figures: Record<string, unknown> = { devices: DEVICES, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version } };
  const keep: string[] = [];

  // 1. The fleet of a few hundred configurations: decisions, then report intake.
  log(`building ${DEVICES} devices (${SMALL.label}), ${REPORTS} with real keys ...`);
  let t = performance.now();
  const fleet = buildFleet(SMALL, DEVICES, REPORTS, 1);
  log(`  built in ${round(ms(t) / 1000)} s: ${fleet.configs} configurations, database ${diskMiB(fleet.file)} MiB`);
  const sizeAfterSetup = diskMiB(fleet.file);
  log(`decision rounds (${SMALL.label}):`);
  const small = await decisionRounds(fleet);

  log(`sealing ${REPORTS} reports as the devices would (not measured) ...`);
  t = performance.now();
  const envelopes = await sealReports(fleet);
  const sealSeconds = ms(t) / 1000;
  // A third of the reports one per transaction, a third in batches on this thread, a third
  // through ReportIntake (worker threads, concurrent arrivals); distinct devices each time.
  const third = Math.floor(envelopes.length / 3);
  log(`report intake: ${third} one per transaction (takeSealedReport) ...`);
  const single = intakeOneByOne(fleet, envelopes.slice(0, third));
  log(`  ${single.perSecond} reports/s`);
  log(`report intake: ${third} in batches of ${BATCH} (takeSealedReports) ...`);
  const batched = intakeBatched(fleet, envelopes.slice(third, 2 * third));
  log(`  ${batched.perSecond} reports/s`);
  log(`report intake: ${envelopes.length - 2 * third} through ReportIntake, ${IN_FLIGHT} in flight ...`);
  const concurrent = await intakeConcurrent(fleet, envelopes.slice(2 * third), IN_FLIGHT);
  log(`  ${concurrent.perSecond} reports/s on ${concurrent.workers} worker thread(s)`);
  const breakdown = intakeBreakdown(fleet, envelopes.slice(0, Math.min(500, envelopes.length)));
  log(`report sessions for the ${fleet.reporters.length} reporting devices, and their next reports (not measured) ...`);
  const sessions = sessionReports(fleet, 12);
  const sessionsBreakdown = sessionBreakdown(fleet, sessions.envelopes.slice(0, Math.min(500, sessions.envelopes.length)), sessions.keys);
  const half = Math.floor(sessions.envelopes.length / 2);
  log(`report intake under sessions: ${half} through ReportIntake, ${IN_FLIGHT} in flight ...`);
  const sessionConcurrent = await sessionIntake(fleet, sessions.envelopes.slice(0, half), IN_FLIGHT);
  log(`  ${sessionConcurrent.perSecond} reports/s`);
  // The other half with the worker threads started, as the tracker runs (they open only full reports).
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  const sessionWithThreads = await sessionIntake(fleet, sessions.envelopes.slice(half), IN_FLIGHT, threads);
  log(`  ${sessionWithThreads.perSecond} reports/s with ${threads} idle worker thread(s)`);
  const sizeAfterIntake = diskMiB(fleet.file);
  fleet.db.close();
  if (KEEP) keep.push(fleet.file);
  else rmSync(fleet.dir, { recursive: true, force: true });
  const rssSmall = peakRssMiB();

  // 2. The same number of devices over ~10,000 configurations: decisions only.
  log(`building ${DEVICES} devices (${LARGE.label}) ...`);
  t = performance.now();
  const large = buildFleet(LARGE, DEVICES, 0, 2);
  log(`  built in ${round(ms(t) / 1000)} s: ${large.configs} configurations, database ${diskMiB(large.file)} MiB`);
  log(`decision rounds (${LARGE.label}):`);
  const largeRounds = await decisionRounds(large);
  large.db.close();
  if (KEEP) keep.push(large.file);
  else rmSync(large.dir, { recursive: true, force: true });

  const summarise = (f: Fleet, r: { rounds: Round[]; breakdown: Record<string, number> }) => ({
    configurations: f.configs,
    "setup s (not measured)": round((f.setupMs.catalogueAndConfigs + f.setupMs.devices) / 1000),
    "decide ms median": round(median(r.rounds.map((x) => x.decideMs))),
    "decide ms max": round(Math.max(...r.rounds.map((x) => x.decideMs))),
    "target decide ms": 1000,
    "read affected ids ms median": round(median(r.rounds.map((x) => x.materialiseMs))),
    "read affected ids ms max": round(Math.max(...r.rounds.map((x) => x.materialiseMs))),
    "decide + read ids ms max": round(Math.max(...r.rounds.map((x) => x.decideMs + x.materialiseMs))),
    breakdown: r.breakdown,
    rounds: r.rounds.map((x) => ({ ...x, decideMs: round(x.decideMs), applyMs: round(x.applyMs), materialiseMs: round(x.materialiseMs) })),
  });
  figures.decisions = { [SMALL.label]: summarise(fleet, small), [LARGE.label]: summarise(large, largeRounds) };
  figures.intake = {
    "reports sealed (device side, not measured)": envelopes.length,
    "sealing s (not measured)": round(sealSeconds),
    "one per transaction": single,
    [`batches of ${BATCH}`]: batched,
    [`ReportIntake, ${IN_FLIGHT} in flight`]: concurrent,
    "target reports/s": 10_000,
    "where one report's time goes": breakdown,
    "under report sessions (ADR 0013)": {
      [`ReportIntake, ${IN_FLIGHT} in flight`]: sessionConcurrent,
      [`ReportIntake, ${IN_FLIGHT} in flight, worker threads started`]: sessionWithThreads,
      "where one session report's time goes": sessionsBreakdown,
    },
  };
  figures.memory = {
    "peak RSS MiB before": baseline,
    "peak RSS MiB after the first fleet (decisions + intake)": rssSmall,
    "peak RSS MiB at the end": peakRssMiB(),
    "database MiB after setup": sizeAfterSetup,
    "database MiB after intake": sizeAfterIntake,
  };
  if (keep.length) figures.kept = keep;

  if (json) {
    console.log(JSON.stringify(figures, null, 2));
    return;
  }
  const row = (k: string, v: unknown) => console.log(`${k.padEnd(64)} ${v}`);
  console.log(`\nstatus tracker, ${DEVICES} devices, ${os.cpus().length} cores (${os.cpus()[0]?.model}), node ${process.version}`);
  for (const [label, d] of Object.entries(figures.decisions as Record<string, ReturnType<typeof summarise>>)) {
    console.log(`\ndecision latency, ${label} (${d.configurations} in use)`);
    for (const [k, v] of Object.entries(d)) if (k !== "rounds" && k !== "breakdown" && k !== "configurations") row(k, v);
    for (const [k, v] of Object.entries(d.breakdown)) row(`  ${k}`, v);
  }
  console.log(`\nreport intake (open + signature + checks + durable store)`);
  row("reports sealed (device side, not measured)", envelopes.length);
  row("one per transaction: reports/s", single.perSecond);
  row(`batches of ${BATCH}: reports/s`, batched.perSecond);
  row(`ReportIntake (${concurrent.workers} worker threads, ${IN_FLIGHT} in flight): reports/s`, concurrent.perSecond);
  row("target reports/s", 10_000);
  row("refused (should be 0)", single.refused + batched.refused + concurrent.refused);
  for (const [k, v] of Object.entries(breakdown)) row(`  ${k}`, v);
  console.log(`\nreport intake under report sessions (ADR 0013: AES-GCM under the session key + checks + durable store)`);
  row(`ReportIntake (${IN_FLIGHT} in flight): reports/s`, sessionConcurrent.perSecond);
  row(`ReportIntake (${sessionWithThreads.workers} worker threads started, idle): reports/s`, sessionWithThreads.perSecond);
  row("target reports/s", 10_000);
  row("refused (should be 0)", sessionConcurrent.refused + sessionWithThreads.refused);
  for (const [k, v] of Object.entries(sessionsBreakdown)) row(`  ${k}`, v);
  console.log(`\nmemory`);
  for (const [k, v] of Object.entries(figures.memory as Record<string, number>)) row(k, v);
  if (keep.length) row("kept", keep.join(" "));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
