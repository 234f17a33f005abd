import { OtaError } from "../core/errors";

/**
 * Where artifacts live (the firmware server's backend). Two implementations, chosen by
 * configuration: the embedded IPFS store (embeddedStore.ts, the default: in-process, persisted on
 * disk, no network) and a real IPFS node over the Kubo RPC API (kuboStore.ts).
 *
 * Every implementation imports content with the same fixed settings (cid.ts IMPORT_SETTINGS), so
 * `add` returns exactly the CID the author computed locally with `computeCid`, whichever store is
 * used. CIDs are passed as strings (CIDv1 base32, as `CID.toString()` prints them).
 */
export interface ContentStore {
  /** "embedded" or "kubo": for logs and health answers. */
  readonly kind: string;

  /**
   * Imports a byte stream and returns the CID of its UnixFS DAG. Does not pin. `onBlock` hears
   * the CID of each block written, so that a caller who refuses the content can delete them.
   */
  add(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: StoreCallOptions & { onBlock?: (cid: string) => void }): Promise<string>;

  /** Deletes these blocks (pinned ones are kept). Idempotent: a block not held is no error. */
  deleteBlocks(cids: string[], options?: StoreCallOptions): Promise<void>;

  /** Streams the file's bytes, or `length` bytes from `offset` (to the end when `length` is omitted). */
  cat(cid: string, options?: StoreCallOptions & ByteRange): AsyncIterable<Uint8Array>;

  /** One raw block (a dag-pb node or a raw leaf) by its own CID, for the trustless gateway. */
  getBlock(cid: string, options?: StoreCallOptions): Promise<Uint8Array>;

  /** Whether the block with this CID is held locally (never fetched from elsewhere). */
  has(cid: string, options?: StoreCallOptions): Promise<boolean>;

  /** Keeps the whole DAG under `cid` from garbage collection. Idempotent. */
  pin(cid: string, options?: StoreCallOptions): Promise<void>;

  /** Lets the DAG under `cid` be collected. Idempotent: unpinning what is not pinned is not an error. */
  unpin(cid: string, options?: StoreCallOptions): Promise<void>;

  isPinned(cid: string, options?: StoreCallOptions): Promise<boolean>;

  /** Releases files, sockets and timers. The store is unusable afterwards. */
  close(): Promise<void>;
}

export interface ByteRange {
  offset?: number;
  length?: number;
}

export interface StoreCallOptions {
  /** Aborts the call; every call is also bounded by the store's own timeout. */
  signal?: AbortSignal;
}

/** A store call that failed: unreachable node, timeout, missing content. */
export class ContentStoreError extends OtaError {}
