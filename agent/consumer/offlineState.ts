import { promises as fs } from "node:fs";
import { serialFileWriter } from "../files/atomicFile";

/** A block the device read from its own ledger connection (with several endpoints, one they agreed on). */
export interface LearnedBlock {
  number: number;
  hash: string;
  timestamp: number; // unix s
}

/** How many learned blocks are kept (the newest), and how far apart in time. */
export const LEARNED_BLOCKS_MAX = 48;
const LEARNED_BLOCK_SPACING_S = 3600;
/** The newest learned block is replaced at most this often: a flash write per block would be too many. */
const LEARNED_BLOCK_REFRESH_S = 60;

interface Stored {
  version: 1;
  trustedBlocks: LearnedBlock[];
  /** Releases installed offline whose status the ledger has not been asked since: release id -> component id. */
  offlineInstalls: Record<string, string>;
}

/**
 * What the device keeps for offline installs (issue 19 item 10, ADR 0017), in
 * `<dataDir>/offline-state.json`:
 * - the blocks it read from its own ledger connection while online (number, hash, time): an
 *   offline bundle's block must be one of them (or one device.json lists), so the device checks
 *   the bundle's proofs against a block it learned itself, never one the bundle vouches for;
 * - the releases it installed offline, whose status it asks the ledger once it answers again
 *   (a revocation after the bundle's block could not be seen offline).
 * A missing or unreadable file is a device that learned no block yet: an offline install is then
 * refused (OFFLINE_BLOCK_UNTRUSTED) unless device.json configures a trusted block.
 */
export class OfflineState {
  private constructor(
    private readonly file: string,
    private learned: LearnedBlock[],
    readonly offlineInstalls: Map<string, string>,
  ) {}

  static async open(file: string, log?: (line: string) => void): Promise<OfflineState> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new OfflineState(file, [], new Map());
      throw err;
    }
    try {
      const s = JSON.parse(text) as Stored;
      if (s.version !== 1 || !Array.isArray(s.trustedBlocks)) throw new Error("not an offline-state file of version 1");
      const learned = s.trustedBlocks
        .filter((b) => Number.isSafeInteger(b?.number) && Number.isSafeInteger(b?.timestamp) && /^0x[0-9a-f]{64}$/.test(String(b?.hash)))
        .map((b) => ({ number: b.number, hash: b.hash, timestamp: b.timestamp }))
        .slice(-LEARNED_BLOCKS_MAX);
      const installs = typeof s.offlineInstalls === "object" && s.offlineInstalls !== null ? s.offlineInstalls : {};
      return new OfflineState(file, learned, new Map(Object.entries(installs).map(([k, v]) => [k.toLowerCase(), String(v)])));
    } catch (err) {
      log?.(`${file} is unreadable (${(err as Error).message}): starting without learned blocks`);
      return new OfflineState(file, [], new Map());
    }
  }

  /** The blocks learned while online, oldest first. */
  get trustedBlocks(): readonly LearnedBlock[] {
    return this.learned;
  }

  /**
   * Keeps a block the device read from its ledger while online: one an hour (the newest
   * LEARNED_BLOCKS_MAX, two days), and the newest of all, which stands in for its hour and is
   * replaced at most once a minute. Writes only on a change.
   */
  async noteBlock(b: LearnedBlock): Promise<void> {
    const hash = b.hash.toLowerCase();
    if (!/^0x[0-9a-f]{64}$/.test(hash) || !Number.isSafeInteger(b.number) || !Number.isSafeInteger(b.timestamp)) return;
    const newest = this.learned.at(-1);
    if (newest && (b.number <= newest.number || b.timestamp - newest.timestamp < LEARNED_BLOCK_REFRESH_S)) return;
    const before = this.learned.at(-2);
    if (newest && before && newest.timestamp - before.timestamp < LEARNED_BLOCK_SPACING_S) this.learned.pop();
    this.learned.push({ number: b.number, hash, timestamp: b.timestamp });
    if (this.learned.length > LEARNED_BLOCKS_MAX) this.learned.shift();
    await this.save();
  }

  /** Remembers (a component) or forgets (undefined) a release installed offline. */
  async setOfflineInstall(releaseId: string, component: string | undefined): Promise<void> {
    const id = releaseId.toLowerCase();
    if (component === undefined ? !this.offlineInstalls.has(id) : this.offlineInstalls.get(id) === component) return;
    if (component === undefined) this.offlineInstalls.delete(id);
    else this.offlineInstalls.set(id, component);
    await this.save();
  }

  private write: ((content: () => string) => Promise<void>) | undefined;

  private save(): Promise<void> {
    this.write ??= serialFileWriter(this.file);
    return this.write(() => {
      const stored: Stored = { version: 1, trustedBlocks: this.learned, offlineInstalls: Object.fromEntries(this.offlineInstalls) };
      return JSON.stringify(stored) + "\n";
    });
  }
}
