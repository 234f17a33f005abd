import type { BlockRef, StreamState } from "../../chain/eventStreamStore";
import type { SentTx, TxJournal } from "../ledgerAccount";
import type { StoreConnection } from "./connection";

/** A ledger event the mirror applied, as kept to undo a reorganisation exactly. */
export interface LedgerEventRow {
  kind: string;
  payload: string; // JSON
  blockHash: string;
  logIndex: number;
}

/**
 * The tracker's ledger state (agent/tracker/ledgerMirror.ts): the events the mirror applied
 * (table ledger_events), where its stream stands (ledger_position, written in the transaction of
 * the events of the same blocks, issue 16), and its ledger account's transactions not yet buried
 * (ledger_txs).
 */
export class LedgerStore {
  constructor(private readonly c: StoreConnection) {}

  /** Keeps an applied event; false when it was kept already (the stream may deliver a batch again). */
  addEvent(log: { blockHash: string; logIndex: number; blockNumber: number }, kind: string, subject: string, payload: string): boolean {
    return (
      this.c
        .sql(`INSERT OR IGNORE INTO ledger_events (block_hash, log_index, block_number, kind, subject, payload) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(log.blockHash, log.logIndex, log.blockNumber, kind, subject, payload).changes === 1
    );
  }

  /** Forgets the events of a block (a reorganisation removed it); returns the subjects they were about. */
  dropEventsOf(blockHash: string): string[] {
    return this.c.transaction(() => {
      const subjects = this.c.sql(`SELECT subject FROM ledger_events WHERE block_hash = ?`).pluck().all(blockHash) as string[];
      this.c.sql(`DELETE FROM ledger_events WHERE block_hash = ?`).run(blockHash);
      return subjects;
    });
  }

  /** The events about one subject ("release:0x...", "device:0x..."), in chain order. */
  eventsOf(subject: string): LedgerEventRow[] {
    return this.c
      .sql(`SELECT kind, payload, block_hash AS blockHash, log_index AS logIndex FROM ledger_events WHERE subject = ? ORDER BY block_number, log_index`)
      .all(subject) as LedgerEventRow[];
  }

  /** The blocks, from `first` on, whose events the mirror holds. */
  blocksFrom(first: number): BlockRef[] {
    return this.c
      .sql(`SELECT DISTINCT block_number AS number, block_hash AS hash FROM ledger_events WHERE block_number >= ? ORDER BY block_number`)
      .all(first) as BlockRef[];
  }

  /** The ledger stream's saved state (agent/chain/eventStreamStore), or undefined before the first. */
  position(): StreamState | undefined {
    const text = this.c.sql(`SELECT state FROM ledger_position WHERE id = 1`).pluck().get() as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as StreamState);
  }

  /** Saves it; inside the caller's transaction when there is one (the events of the same blocks). */
  setPosition(state: StreamState): void {
    this.c.sql(`INSERT INTO ledger_position (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`).run(JSON.stringify(state));
  }

  /** Forgets it: the stream reads the ledger again from its first block. */
  clearPosition(): void {
    this.c.sql(`DELETE FROM ledger_position`).run();
  }

  /** The ledger account's journal of transactions not yet buried (TxJournal). */
  get txs(): TxJournal {
    return {
      list: () => (this.c.sql(`SELECT tx FROM ledger_txs ORDER BY nonce`).pluck().all() as string[]).map((t) => JSON.parse(t) as SentTx),
      put: (tx) => void this.c.sql(`INSERT OR REPLACE INTO ledger_txs (nonce, tx) VALUES (?, ?)`).run(tx.nonce, JSON.stringify(tx)),
      remove: (nonce) => void this.c.sql(`DELETE FROM ledger_txs WHERE nonce = ?`).run(nonce),
    };
  }
}
