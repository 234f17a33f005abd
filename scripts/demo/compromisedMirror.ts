import type { ContentStore } from "../../agent/storage/contentStore";
import type { ServerDatabase } from "../../agent/server/serverDatabase";
import type { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../agent/server/firmwareServer";

/**
 * A compromised mirror of the firmware server: the same code, the same database and the same
 * IPFS store as the real one, but while `tampering` is on, its store flips one byte of every
 * artifact it reads out. It stands for a server an attacker controls; the device sent to it must
 * refuse what it serves against the ledger's Merkle root (CAP-11.1-a-v) and install nothing.
 */
export interface CompromisedMirror {
  url: string;
  tampering: boolean;
  /** How many artifact reads it altered. */
  readonly altered: number;
  close(): Promise<void>;
}

const FLIP_AT = 4096; // inside the first chunk's ciphertext, past the artifact header

export async function startCompromisedMirror(o: { store: ContentStore; db: ServerDatabase; gate: LedgerGate }): Promise<CompromisedMirror> {
  const state = { tampering: false, altered: 0 };
  const store: ContentStore = {
    kind: o.store.kind,
    add: (content, options) => o.store.add(content, options),
    deleteBlocks: async () => {}, // the real server owns the store and withdraws revoked releases
    getBlock: (cid, options) => o.store.getBlock(cid, options),
    has: (cid, options) => o.store.has(cid, options),
    pin: (cid, options) => o.store.pin(cid, options),
    unpin: async () => {},
    isPinned: (cid, options) => o.store.isPinned(cid, options),
    close: async () => {}, // the real server owns the store
    cat(cid, options) {
      const source = o.store.cat(cid, options);
      if (!state.tampering) return source;
      state.altered++;
      return (async function* () {
        let at = options?.offset ?? 0;
        for await (const chunk of source) {
          if (at <= FLIP_AT && FLIP_AT < at + chunk.length) {
            const altered = Uint8Array.from(chunk);
            altered[FLIP_AT - at] ^= 0xff;
            yield altered;
          } else yield chunk;
          at += chunk.length;
        }
      })();
    },
  };
  const server = await startFirmwareServer({ gate: o.gate, store, db: o.db, port: 0, pollMs: 1000 });
  return {
    url: server.url,
    get tampering() {
      return state.tampering;
    },
    set tampering(on: boolean) {
      state.tampering = on;
    },
    get altered() {
      return state.altered;
    },
    close: () => server.close(),
  };
}
