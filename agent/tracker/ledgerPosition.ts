import { existsSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import type { BlockRef, StreamState, StreamStore } from "../chain/eventStreamStore";
import { StreamStateError } from "../chain/eventStreamStore";
import type { FleetStore } from "./store";
import { LedgerMirror } from "./ledgerMirror";

/** Where trackers before issue 16 kept their stream position, beside fleet.db (adopted once, then renamed). */
export const LEGACY_CHECKPOINT_FILE = "ledger-checkpoint.json";

/**
 * The tracker's ledger stream position, kept in the fleet database (table ledger_position). The
 * mirror writes it in the transaction that applies or undoes the events of the same blocks
 * (LedgerMirror); the stream's own save, after that, writes the same state again, and alone
 * moves the position past blocks without events.
 */
export class FleetPositionStore implements StreamStore {
  constructor(private readonly db: FleetStore) {}

  async load(): Promise<StreamState | undefined> {
    return this.db.ledger.position();
  }

  async save(state: StreamState): Promise<void> {
    this.db.ledger.setPosition(state);
  }
}

/**
 * Makes the database and its position agree before the stream starts: takes the position file of
 * an earlier version once (renamed `.adopted`), then undoes any ledger event of a block past the
 * position, exactly as a reorganisation undoes it. With the position in the database no such
 * event can exist; a database whose position came from a file, or a plain copy without one,
 * can hold them (events applied, their position not yet saved when it stopped).
 * Returns the number of blocks undone, and whether a file was adopted.
 */
export function reconcileLedgerPosition(db: FleetStore, dataDir: string): { adopted: boolean; trimmedBlocks: number } {
  let adopted = false;
  const legacy = path.join(dataDir, LEGACY_CHECKPOINT_FILE);
  if (db.ledger.position() === undefined && existsSync(legacy)) {
    let state: StreamState;
    try {
      state = JSON.parse(readFileSync(legacy, "utf8")) as StreamState;
      if (!Number.isSafeInteger(state.block) || !Array.isArray(state.window)) throw new Error("unexpected shape");
    } catch (err) {
      throw new StreamStateError(
        "STREAM_STATE_UNREADABLE",
        `${legacy} (the ledger position of an earlier version) cannot be read: move it away to read the ledger again from the deployment block`,
        { cause: err },
      );
    }
    db.ledger.setPosition(state);
    adopted = true;
  }
  const trimmedBlocks = trimToPosition(db, db.ledger.position());
  if (adopted) renameSync(legacy, `${legacy}.adopted`);
  return { adopted, trimmedBlocks };
}

/** Undoes the ledger events of blocks past `position` (all of them without one); the number of blocks undone. */
export function trimToPosition(db: FleetStore, position: StreamState | undefined): number {
  const blocks = blocksFrom(db, (position?.block ?? -1) + 1);
  if (blocks.length === 0) return 0;
  undo(db, blocks, position);
  return new Set(blocks.map((b) => b.number)).size;
}

/**
 * `ota-ledger tracker resync`: forgets what the mirror took from block `fromBlock` on and sets the
 * position just before it, so the stream reads the ledger again from there. `parent` is block
 * fromBlock - 1 as the chain has it now (null to read from the stream's first block, forgetting
 * the position). The fleet's reports, decisions and anchors are kept; releases and devices that
 * are not on the chain read again disappear, as in a reorganisation.
 */
export function resyncLedger(db: FleetStore, fromBlock: number, parent: BlockRef | null): { droppedBlocks: number } {
  const blocks = blocksFrom(db, fromBlock);
  const position: StreamState | undefined = parent ? { block: parent.number, hash: parent.hash, window: [{ ...parent, logs: [] }] } : undefined;
  undo(db, blocks, position);
  return { droppedBlocks: new Set(blocks.map((b) => b.number)).size };
}

/** The blocks, from `first` on, whose ledger events the mirror holds. */
function blocksFrom(db: FleetStore, first: number): BlockRef[] {
  return db.ledger.blocksFrom(first);
}

/** Undoes the events of `blocks` as a reorganisation would, and saves `position` with it (none: forgotten), in one transaction. */
function undo(db: FleetStore, blocks: BlockRef[], position: StreamState | undefined): void {
  // Only revert() is used: it reads no address.
  const mirror = new LedgerMirror(db, {
    registry: "0x0000000000000000000000000000000000000000",
    fleet: "0x0000000000000000000000000000000000000000",
    domain: {},
  });
  db.transaction(() => {
    mirror.revert(blocks[0]?.number ?? 0, blocks, position ?? { block: -1, hash: null, window: [] });
    if (!position) db.ledger.clearPosition();
  });
}
