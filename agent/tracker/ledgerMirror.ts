import { Interface, isError, type LogDescription, type TypedDataDomain } from "ethers";
import type { StreamBatch, StreamHandler, StreamLog } from "../chain/eventStream";
import type { BlockRef, StreamState } from "../chain/eventStreamStore";
import type { FleetStore } from "./store";
import { FleetRegistry__factory, ReleaseBundles__factory, UpdateRegistry__factory, type UpdateRegistry } from "../chain/contracts";
import { decodeStreamedRelease } from "../chain/releaseEvents";
import { deviceLeaf, verifyDeviceProof, type DeviceRecord } from "../crypto/deviceTree";
import { componentId } from "../core/release";

type Subject = { kind: "release" | "device" | "provider" | "batch" | "component" | "hardware" | "bundle"; id: string };

/**
 * Keeps the fleet database's mirror of the ledger (releases and their status, devices and their
 * standing) in step with the event stream. Every applied event is kept in `ledger_events` keyed
 * by block hash and log index: applying is idempotent (the stream may deliver a batch again after
 * a crash), and a reorganisation is undone by dropping the events of the removed blocks and
 * rebuilding each affected release, device or provider from the events that remain. A release is
 * taken only if its event data hashes to its id (the EIP-712 digest), so a garbled log is refused.
 * The stream's position is written in the same transaction as the events of its blocks (issue
 * 16), so that the database and the position never describe different blocks, whatever the crash.
 * Component and hardware class names are mirrored too (issue 19), from their registration events,
 * so that the read API and the dashboard name what they show; they change no plan. Release bundles
 * (docs/adr/0019) are mirrored from ReleaseBundles' BundleCreated when its address is given, as
 * releases are (a reorganisation that removes the event removes the bundle).
 * `onChange` runs after each transaction that changed something (the tracker re-plans then).
 */
export class LedgerMirror implements StreamHandler {
  private readonly registry = new Interface(UpdateRegistry__factory.abi);
  private readonly fleet = new Interface(FleetRegistry__factory.abi);
  private readonly bundles = new Interface(ReleaseBundles__factory.abi);

  private readonly registryView: UpdateRegistry;

  constructor(
    private readonly db: FleetStore,
    private readonly addresses: { registry: string; fleet: string; bundles?: string; domain: TypedDataDomain },
    private readonly onChange: (changed: { releases: boolean; devices: boolean }) => void = () => {},
  ) {
    // decodeReleasePublished reads only the address and the interface.
    this.registryView = { target: addresses.registry, interface: this.registry } as unknown as UpdateRegistry;
  }

  apply(batch: StreamBatch): void {
    const changed = { releases: false, devices: false };
    this.db.transaction(() => {
      for (const block of batch.blocks) {
        for (const log of block.logs) {
          const parsed = this.parse(log);
          if (!parsed) continue;
          const { subject, payload } = parsed;
          // Only the first delivery changes anything.
          if (this.db.ledger.addEvent(log, parsed.kind, `${subject.kind}:${subject.id}`, JSON.stringify(payload))) {
            this.rebuild(subject);
            if (subject.kind === "device" || subject.kind === "batch") changed.devices = true;
            else if (subject.kind === "release" || subject.kind === "provider" || subject.kind === "bundle") changed.releases = true;
          }
        }
      }
      this.db.ledger.setPosition(batch.checkpoint);
    });
    if (changed.releases || changed.devices) this.onChange(changed);
  }

  revert(_fromBlock: number, blocks: BlockRef[], checkpoint: StreamState): void {
    this.db.transaction(() => {
      this.db.ledger.setPosition(checkpoint);
      const touched = new Set<string>();
      for (const b of blocks) for (const subject of this.db.ledger.dropEventsOf(b.hash)) touched.add(subject);
      for (const s of touched) {
        const [kind, id] = s.split(":");
        this.rebuild({ kind: kind as Subject["kind"], id });
      }
      if (touched.size > 0)
        this.onChange({
          releases: [...touched].some((t) => t.startsWith("release:") || t.startsWith("provider:") || t.startsWith("bundle:")),
          devices: [...touched].some((t) => t.startsWith("device:") || t.startsWith("batch:")),
        });
    });
  }

  private rebuild(subject: Subject): void {
    rebuildSubject(this.db, subject);
  }

  private parse(log: StreamLog): { kind: string; subject: Subject; payload: object } | undefined {
    const address = log.address.toLowerCase();
    let p: LogDescription | null = null;
    if (address === this.addresses.registry.toLowerCase()) p = this.registry.parseLog(log);
    else if (address === this.addresses.fleet.toLowerCase()) p = this.fleet.parseLog(log);
    else if (address === this.addresses.bundles?.toLowerCase()) p = this.bundles.parseLog(log);
    if (!p) return undefined;
    const a = p.args;
    switch (p.name) {
      case "ReleasePublished": {
        const { record } = decodeStreamedRelease(this.registryView, this.addresses.domain, log);
        return {
          kind: "published",
          subject: { kind: "release", id: String(a.releaseId).toLowerCase() },
          payload: { blockNumber: log.blockNumber, record: JSON.parse(JSON.stringify(record, (_k, v) => (typeof v === "bigint" ? v.toString() : v))) },
        };
      }
      case "BundleCreated":
        return {
          kind: "bundle-created",
          subject: { kind: "bundle", id: String(a.bundleId).toLowerCase() },
          payload: {
            blockNumber: log.blockNumber,
            provider: Number(a.provider),
            name: String(a.name),
            version: String(a.version),
            releaseIds: (a.releaseIds as string[]).map((r) => String(r).toLowerCase()),
            components: (a.components as string[]).map((c) => String(c).toLowerCase()),
            hardware: (a.hardware as bigint[]).map(Number),
          },
        };
      case "ComponentRegistered": {
        // The id is keccak256 of the name: a name that does not hash to it is not taken.
        const id = String(a.component).toLowerCase();
        const name = String(a.name);
        if (componentId(name).toLowerCase() !== id) return undefined;
        return { kind: "component-registered", subject: { kind: "component", id }, payload: { name } };
      }
      case "HardwareClassRegistered":
        return { kind: "hardware-registered", subject: { kind: "hardware", id: String(Number(a.hardwareClass)) }, payload: { name: String(a.name) } };
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
        return { kind: "record-revoked", subject: { kind: "device", id: String(a.deviceId).toLowerCase() }, payload: { leaf: String(a.leaf).toLowerCase() } };
      case "DeviceBatchEnrolled":
        return {
          kind: "batch-enrolled",
          subject: { kind: "batch", id: String(Number(a.batchId)) },
          payload: { root: String(a.root).toLowerCase(), count: Number(a.count), recordsLink: a.recordsLink },
        };
      case "DeviceBatchRevoked":
        return { kind: "batch-revoked", subject: { kind: "batch", id: String(Number(a.batchId)) }, payload: {} };
      default:
        return undefined;
    }
  }
}

/** Recomputes one release, provider, batch or device from its remaining events, in chain order. */
function rebuildSubject(db: FleetStore, subject: Subject): void {
  const events = db.ledger.eventsOf(`${subject.kind}:${subject.id}`);
  if (subject.kind === "component" || subject.kind === "hardware") {
    // A name is registered once; if its registration left the chain, so does the name.
    const registered = events.at(-1);
    const name = registered ? (JSON.parse(registered.payload).name as string) : null;
    if (subject.kind === "component") db.catalogue.setComponentName(subject.id, name);
    else db.catalogue.setHardwareName(Number(subject.id), name);
    return;
  }
  if (subject.kind === "bundle") {
    // Created once and immutable (docs/adr/0019): if its event left the chain, so does the bundle.
    const created = events.find((e) => e.kind === "bundle-created");
    if (!created) return db.catalogue.deleteBundle(subject.id);
    const p = JSON.parse(created.payload);
    db.catalogue.upsertBundle({
      id: subject.id,
      provider: p.provider,
      name: p.name,
      version: BigInt(p.version),
      members: (p.releaseIds as string[]).map((releaseId, i) => ({ releaseId, component: p.components[i] as string })),
      hardware: p.hardware,
      createdBlock: p.blockNumber,
      blockHash: created.blockHash,
      logIndex: created.logIndex,
    });
    return;
  }
  if (subject.kind === "provider") {
    const last = events.at(-1);
    db.catalogue.setProviderBarred(Number(subject.id), last?.kind === "barred");
    return;
  }
  if (subject.kind === "release") {
    const published = events.find((e) => e.kind === "published");
    if (!published) return db.catalogue.deleteRelease(subject.id);
    const p = JSON.parse(published.payload);
    const last = [...events].reverse().find((e) => e.kind === "revoked" || e.kind === "vulnerable");
    const status = events.some((e) => e.kind === "revoked") ? "revoked" : last?.kind === "vulnerable" ? "vulnerable" : "active";
    const record = {
      ...p.record,
      version: BigInt(p.record.version),
      fileSize: BigInt(p.record.fileSize),
      dependencies: p.record.dependencies.map((d: { component: string; minVersion: string; maxVersion: string }) => ({
        component: d.component,
        minVersion: BigInt(d.minVersion),
        maxVersion: BigInt(d.maxVersion),
      })),
    };
    db.catalogue.upsertRelease({
      id: subject.id,
      component: record.component,
      provider: record.provider,
      version: record.version,
      hardware: record.hardware,
      status,
      blockHash: published.blockHash,
      logIndex: published.logIndex,
      record,
      publishedAt: p.blockNumber,
    });
    return;
  }
  if (subject.kind === "batch") {
    const enrolled = events.find((e) => e.kind === "batch-enrolled");
    const id = Number(subject.id);
    const members = db.devices.ofBatch(id);
    if (!enrolled) db.devices.deleteBatch(id);
    else
      db.devices.upsertBatch(
        id,
        JSON.parse(enrolled.payload).root,
        events.some((e) => e.kind === "batch-revoked"),
      );
    for (const d of members) rebuildSubject(db, { kind: "device", id: d });
    return;
  }
  const row = db.devices.get(subject.id);
  const enrolled = [...events].reverse().find((e) => e.kind === "enrolled");
  // A device of a Merkle batch has no event of its own: its record came with its first report.
  const batch = !enrolled && row?.batchId != null ? db.devices.batch(row.batchId) : undefined;
  if (!enrolled && !batch) return db.devices.delete(subject.id);
  // As FleetRegistry.deviceStanding: a withdrawn record outranks a suspension, and suspension
  // belongs to the device id (it outlives re-enrolment, and may come before it).
  let suspended = false;
  let revoked = false;
  for (const e of events) {
    if (e.kind === "enrolled") revoked = false; // a new record
    if (e.kind === "record-revoked") revoked = enrolled ? true : JSON.parse(e.payload).leaf?.toLowerCase() === row!.leaf;
    if (e.kind === "suspended") suspended = true;
    if (e.kind === "reinstated") suspended = false;
  }
  if (batch?.revoked) revoked = true;
  const standing = revoked ? "revoked" : suspended ? "suspended" : "active";
  if (enrolled) {
    const d = JSON.parse(enrolled.payload);
    db.devices.upsert({ id: subject.id, publicKey: d.publicKey, hardwareClass: d.hardwareClass, network: d.network, region: d.region, standing });
  } else {
    db.devices.setStanding(subject.id, standing);
  }
}

/**
 * Takes a device enrolled in a Merkle batch when it first presents its record and proof (the
 * ledger holds only the batch root): the proof must lead to the root of a batch the mirror
 * holds, as FleetRegistry.deviceStanding checks it; its standing then follows the ledger's
 * suspensions and withdrawals like any device's. Returns false if the proof does not hold.
 */
export function introduceBatchDevice(db: FleetStore, record: DeviceRecord, batchId: number, proof: string[]): boolean {
  const batch = Number.isSafeInteger(batchId) && batchId > 0 ? db.devices.batch(batchId) : undefined;
  if (!batch || !verifyDeviceProof(record, proof, batch.root)) return false;
  db.transaction(() => {
    db.devices.upsert({
      id: record.id,
      publicKey: record.publicKey,
      hardwareClass: record.hardwareClass,
      network: record.network,
      region: record.region,
      standing: "active",
      batchId,
      leaf: deviceLeaf(record),
    });
    rebuildSubject(db, { kind: "device", id: record.id.toLowerCase() });
  });
  return true;
}

/**
 * Reads from the registry's views the names the mirror lacks (issue 19): the hardware classes
 * registered and the components its releases and configurations name. For a database from before
 * names were mirrored, or a stream that starts past their registration: called at start and when
 * the catalogue changes, it asks one view per missing name, never per device or per request. A
 * component's name is taken only if it hashes to its id. Returns how many names it took.
 */
export async function fillMissingNames(db: FleetStore, registry: Pick<UpdateRegistry, "hardwareClassCount" | "hardwareClass" | "component">): Promise<number> {
  let taken = 0;
  const names = db.catalogue.names();
  const classes = Number(await registry.hardwareClassCount());
  for (let id = 1; id <= classes; id++) {
    if (names.hardware(id) !== null) continue;
    db.catalogue.setHardwareName(id, await registry.hardwareClass(id));
    taken++;
  }
  for (const id of db.catalogue.unnamedComponents()) {
    let name: string;
    try {
      [name] = await registry.component(id);
    } catch (err) {
      if (isError(err, "CALL_EXCEPTION")) continue; // not a registered component (a device may report anything)
      throw err;
    }
    if (componentId(name).toLowerCase() !== id) continue;
    db.catalogue.setComponentName(id, name);
    taken++;
  }
  return taken;
}
