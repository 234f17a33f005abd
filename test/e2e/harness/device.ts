import { promises as fs, existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { loadBootState, type BootState } from "../../../agent/consumer/slots/bootState";
import { IMAGE_FILE } from "../../../agent/consumer/slots/slotImageFile";
import type { UpdateState } from "../../../agent/core/updateCheck";
import { componentId } from "../../../agent/core/release";

/** A device as the harness sees it: its identity, its device.json and its data folder (the "flash"). */
export class DeviceHandle {
  readonly key: Wallet;
  readonly record: { id: string; publicKey: string; hardwareClass: number; network: string; region: string };
  readonly configFile: string;
  readonly dataDir: string;

  constructor(
    readonly label: string,
    hardwareClass: number,
    readonly dir: string,
  ) {
    this.key = new Wallet(keccak256(toUtf8Bytes(`e2e device key ${label}`)));
    this.record = {
      id: keccak256(toUtf8Bytes(`e2e device ${label}`)).toLowerCase(),
      publicKey: this.key.signingKey.compressedPublicKey,
      hardwareClass,
      network: encodeBytes32String("plant-1"),
      region: encodeBytes32String("eu-west"),
    };
    this.configFile = path.join(dir, `${label}.device.json`);
    this.dataDir = path.join(dir, `${label}-data`);
  }

  get id(): string {
    return this.record.id;
  }

  /** Writes device.json (see docs/device.md). */
  writeConfig(o: {
    components: string[];
    tracker?: { moduleId: string; publicKey: string; url: string; heartbeatMs?: number };
    healthCheck?: "pass" | { command: string[]; timeoutMs?: number };
  }): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(
      this.configFile,
      JSON.stringify(
        {
          privateKey: this.key.privateKey,
          credential: { record: this.record, batchId: 0, proof: [] },
          components: o.components,
          dataDir: path.relative(this.dir, this.dataDir),
          // The node mines only when sent a transaction: its newest block may be old, and that is not a frozen view here.
          policy: { maxLedgerAgeSeconds: 365 * 24 * 3600 },
          healthCheck: o.healthCheck ?? "pass",
          ...(o.tracker ? { tracker: o.tracker } : {}),
        },
        null,
        2,
      ),
    );
  }

  /** The boot state on "flash" (undefined before the first start). */
  async boot(): Promise<BootState | undefined> {
    const root = path.join(this.dataDir, "slots");
    if (!existsSync(root)) return undefined;
    const loaded = await loadBootState(root);
    if ("corrupt" in loaded) throw new Error(`${this.label}: corrupt boot state: ${loaded.corrupt}`);
    return loaded.fresh ? undefined : loaded.state;
  }

  /** What runs for a component: the active slot's record and its bytes. */
  async active(component: string): Promise<{ releaseId: string; version: string; floor: string; slot: string; bytes: Buffer; trial: unknown } | undefined> {
    const boot = await this.boot();
    const id = componentId(component).toLowerCase();
    const c = boot?.components[id];
    const image = c?.slots[c.active];
    if (!c || !image) return undefined;
    const bytes = await fs.readFile(path.join(this.dataDir, "slots", id, c.active, IMAGE_FILE));
    return { releaseId: image.releaseId, version: image.version, floor: c.floor, slot: c.active, bytes, trial: c.trial };
  }

  /** The persisted state of the update in progress or last run (update-state.json). */
  async updateState(): Promise<UpdateState | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dataDir, "update-state.json"), "utf8")) as UpdateState;
    } catch {
      return undefined;
    }
  }

  /** The partial download of a release kept on disk, in bytes (0 if none). */
  async partialDownload(releaseId: string): Promise<number> {
    try {
      return (await fs.stat(path.join(this.dataDir, "downloads", `${releaseId.toLowerCase()}.otae`))).size;
    } catch {
      return 0;
    }
  }
}
