import { Interface, type Log, type LogDescription, type TypedDataDomain } from "ethers";
import type { StreamBatch, StreamHandler, StreamLog } from "../chain/eventStream";
import type { BlockRef } from "../chain/eventStreamStore";
import type { FleetDatabase } from "./fleetDatabase";
import { FleetRegistry__factory, UpdateRegistry__factory, type UpdateRegistry } from "../../typechain-types";
import { decodeReleasePublished } from "../chain/releaseEvents";

type Subject = { kind: "release" | "device" | "provider"; id: string };

/**
 * Keeps the fleet database's mirror of the ledger (releases and their status, devices and their
 * standing) in step with the event stream. Every applied event is kept in `ledger_events` keyed
 * by block hash and log index: applying is idempotent (the stream may deliver a batch again after
 * a crash), and a reorganisation is undone by dropping the events of the removed blocks and
 * rebuilding each affected release, device or provider from the events that remain. A release is
 * taken only if its event data hashes to its id (the EIP-712 digest), so a garbled log is refused.
 * `onChange` runs after each transaction that changed something (the tracker re-plans then).
 */
export class LedgerMirror implements StreamHandler {
  private readonly registry = new Interface(UpdateRegistry__factory.abi);
  private readonly fleet = new Interface(FleetRegistry__factory.abi);

  private readonly registryView: UpdateRegistry;

  constructor(
    private readonly db: FleetDatabase,
    private readonly addresses: { registry: string; fleet: string; domain: TypedDataDomain },
    private readonly onChange: (changed: { releases: boolean; devices: boolean }) => void = () => {},
  ) {
    // decodeReleasePublished reads only the address and the interface.
    this.registryView = { target: addresses.registry, interface: this.registry } as unknown as UpdateRegistry;
  }

  apply(batch: StreamBatch): void {
    const changed = { releases: false, devices: false };
    const insert = this.db.db.prepare(`INSERT OR IGNORE INTO ledger_events (block_hash, log_index, block_number, kind, subject, payload) VALUES (?, ?, ?, ?, ?, ?)`);
    this.db.db.transaction(() => {
      for (const block of batch.blocks) {
        for (const log of block.logs) {
          const parsed = this.parse(log);
          if (!parsed) continue;
          const { subject, payload } = parsed;
          // Only the first delivery changes anything.
          if (insert.run(log.blockHash, log.logIndex, log.blockNumber, parsed.kind, `${subject.kind}:${subject.id}`, JSON.stringify(payload)).changes === 1) {
            this.rebuild(subject);
            if (subject.kind === "device") changed.devices = true;
            else changed.releases = true;
          }
        }
      }
    })();
    if (changed.releases || changed.devices) this.onChange(changed);
  }

  revert(_fromBlock: number, blocks: BlockRef[]): void {
    this.db.db.transaction(() => {
      const touched = new Set<string>();
      for (const b of blocks) {
        for (const row of this.db.db.prepare(`SELECT subject FROM ledger_events WHERE block_hash = ?`).all(b.hash) as { subject: string }[]) touched.add(row.subject);
        this.db.db.prepare(`DELETE FROM ledger_events WHERE block_hash = ?`).run(b.hash);
      }
      for (const s of touched) {
        const [kind, id] = s.split(":");
        this.rebuild({ kind: kind as Subject["kind"], id });
      }
      if (touched.size > 0) this.onChange({ releases: [...touched].some((t) => !t.startsWith("device:")), devices: [...touched].some((t) => t.startsWith("device:")) });
    })();
  }

  /** Recomputes one release or device from its remaining events, in chain order. */
  private rebuild(subject: Subject): void {
    const events = this.db.db
      .prepare(`SELECT kind, payload, block_hash AS blockHash, log_index AS logIndex FROM ledger_events WHERE subject = ? ORDER BY block_number, log_index`)
      .all(`${subject.kind}:${subject.id}`) as { kind: string; payload: string; blockHash: string; logIndex: number }[];
    if (subject.kind === "provider") {
      const last = events.at(-1);
      this.db.setProviderBarred(Number(subject.id), last?.kind === "barred");
      return;
    }
    if (subject.kind === "release") {
      const published = events.find((e) => e.kind === "published");
      if (!published) return this.db.deleteRelease(subject.id);
      const p = JSON.parse(published.payload);
      const last = [...events].reverse().find((e) => e.kind === "revoked" || e.kind === "vulnerable");
      const status = events.some((e) => e.kind === "revoked") ? "revoked" : last?.kind === "vulnerable" ? "vulnerable" : "active";
      const record = { ...p.record, version: BigInt(p.record.version), fileSize: BigInt(p.record.fileSize), dependencies: p.record.dependencies.map((d: { component: string; minVersion: string; maxVersion: string }) => ({ component: d.component, minVersion: BigInt(d.minVersion), maxVersion: BigInt(d.maxVersion) })) };
      this.db.upsertRelease({ id: subject.id, component: record.component, provider: record.provider, version: record.version, hardware: record.hardware, status, blockHash: published.blockHash, logIndex: published.logIndex, record, publishedAt: p.blockNumber });
      return;
    }
    const enrolled = [...events].reverse().find((e) => e.kind === "enrolled");
    if (!enrolled) return this.db.deleteDevice(subject.id);
    const d = JSON.parse(enrolled.payload);
    // As FleetRegistry.deviceStanding: a withdrawn record outranks a suspension, and suspension
    // belongs to the device id (it outlives re-enrolment, and may come before it).
    let suspended = false;
    let revoked = false;
    for (const e of events) {
      if (e.kind === "enrolled") revoked = false; // a new record
      if (e.kind === "record-revoked") revoked = true;
      if (e.kind === "suspended") suspended = true;
      if (e.kind === "reinstated") suspended = false;
    }
    const standing = revoked ? "revoked" : suspended ? "suspended" : "active";
    this.db.upsertDevice({ id: subject.id, publicKey: d.publicKey, hardwareClass: d.hardwareClass, network: d.network, region: d.region, standing });
  }

  private parse(log: StreamLog): { kind: string; subject: Subject; payload: object } | undefined {
    const address = log.address.toLowerCase();
    let p: LogDescription | null = null;
    if (address === this.addresses.registry.toLowerCase()) p = this.registry.parseLog(log);
    else if (address === this.addresses.fleet.toLowerCase()) p = this.fleet.parseLog(log);
    if (!p) return undefined;
    const a = p.args;
    switch (p.name) {
      case "ReleasePublished": {
        const { record } = decodeReleasePublished(this.registryView, this.addresses.domain, { ...log, index: log.logIndex, topics: [...log.topics] } as unknown as Log);
        return {
          kind: "published",
          subject: { kind: "release", id: String(a.releaseId).toLowerCase() },
          payload: { blockNumber: log.blockNumber, record: JSON.parse(JSON.stringify(record, (_k, v) => (typeof v === "bigint" ? v.toString() : v))) },
        };
      }
      case "ProviderBarred":
        return { kind: "barred", subject: { kind: "provider", id: String(Number(a.provider)) }, payload: {} };
      case "ProviderUnbarred":
        return { kind: "unbarred", subject: { kind: "provider", id: String(Number(a.provider)) }, payload: {} };
      case "ReleaseRevoked":
        return { kind: "revoked", subject: { kind: "release", id: String(a.releaseId).toLowerCase() }, payload: {} };
      case "ReleaseFlaggedVulnerable":
        return { kind: "vulnerable", subject: { kind: "release", id: String(a.releaseId).toLowerCase() }, payload: {} };
      case "DeviceEnrolled":
        return {
          kind: "enrolled",
          subject: { kind: "device", id: String(a.deviceId).toLowerCase() },
          payload: { publicKey: a.publicKey, hardwareClass: Number(a.hardwareClass), network: a.network, region: a.region },
        };
      case "DeviceSuspended":
        return { kind: "suspended", subject: { kind: "device", id: String(a.deviceId).toLowerCase() }, payload: {} };
      case "DeviceReinstated":
        return { kind: "reinstated", subject: { kind: "device", id: String(a.deviceId).toLowerCase() }, payload: {} };
      case "DeviceRecordRevoked":
        return { kind: "record-revoked", subject: { kind: "device", id: String(a.deviceId).toLowerCase() }, payload: {} };
      default:
        return undefined;
    }
  }
}
