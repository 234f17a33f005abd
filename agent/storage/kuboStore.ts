import type { CID, KuboRPCClient } from "kubo-rpc-client";
import { importer } from "ipfs-unixfs-importer";
import { importOptions } from "./cid";
import { ByteRange, ContentStore, ContentStoreError, StoreCallOptions } from "./contentStore";
import { importEsm } from "./esm";

type KuboModule = typeof import("kubo-rpc-client");

/** How many times one block is put before the node's failure is the answer, and the wait before the next try (times the attempt). */
const PUT_ATTEMPTS = 3;
const PUT_RETRY_MS = 100;

/** The two block kinds the importer makes, by multicodec code, as block/put names them. */
const BLOCK_FORMATS: Record<number, string> = { 0x70: "dag-pb", 0x55: "raw" };

export interface KuboStoreOptions {
  /** The node's RPC API, e.g. "http://127.0.0.1:5001". */
  url: string;
  /** Longest wait, in ms, for one answer from the node: a request, or the next piece of a stream. */
  timeoutMs?: number;
  /** Longest wait, in ms, for `has` (see there). */
  hasTimeoutMs?: number;
}

/**
 * A content store on a real IPFS node over the Kubo RPC API. Content is imported here, with the
 * fixed settings of cid.ts, and sent block by block, so the CID never depends on the node's own
 * add defaults. Every request is bounded: a node asked for a CID it lacks may wait forever.
 */
export class KuboStore implements ContentStore {
  readonly kind = "kubo";
  private closed = false;

  private constructor(
    private readonly client: KuboRPCClient,
    private readonly cidClass: KuboModule["CID"],
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly hasTimeoutMs: number,
  ) {}

  /** Connects and checks that a node answers, failing with STORE_UNREACHABLE otherwise. */
  static async open({ url, timeoutMs = 30_000, hasTimeoutMs = 2_000 }: KuboStoreOptions): Promise<KuboStore> {
    const kubo = await importEsm<KuboModule>("kubo-rpc-client");
    try {
      // The client's own `timeout` is not applied by kubo-rpc-client 7.1.0; each call sets its own deadline.
      const store = new KuboStore(kubo.create({ url, timeout: timeoutMs }), kubo.CID, url, timeoutMs, hasTimeoutMs);
      await store.request("version", undefined, {}, (o) => store.client.version(o));
      return store;
    } catch (cause) {
      if (cause instanceof ContentStoreError && cause.code === "STORE_UNREACHABLE") throw cause;
      throw new ContentStoreError("STORE_UNREACHABLE", `no IPFS node answers at ${url}: start it or fix storage.url`, {
        cause,
        details: { url, timeoutMs },
      });
    }
  }

  async add(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: StoreCallOptions & { onBlock?: (cid: string) => void } = {}): Promise<string> {
    this.assertOpen();
    const deadline = new Deadline(this.timeoutMs, options.signal);
    const blockstore = {
      put: async (cid: CID, block: Uint8Array) => {
        await this.putBlock(cid, block, deadline);
        options.onBlock?.(cid.toString());
        return cid;
      },
    };
    // One block in flight at a time: memory stays near one chunk whatever the file size.
    const settings = { ...importOptions(), fileImportConcurrency: 1, blockWriteConcurrency: 1 };
    let root: string | undefined;
    for await (const entry of importer([{ content }], blockstore, settings)) root = entry.cid.toString();
    if (!root) throw new ContentStoreError("STORE_FAILED", "the importer produced no CID");
    return root;
  }

  async *cat(cid: string, options: StoreCallOptions & ByteRange = {}): AsyncIterable<Uint8Array> {
    const parsed = this.parse(cid);
    const { offset, length } = checkRange(options);
    this.assertOpen();
    const deadline = new Deadline(this.timeoutMs, options.signal);
    try {
      // Armed only while we wait for the node, so a slow reader does not count against it.
      deadline.arm();
      for await (const chunk of this.client.cat(parsed, { offset, length, signal: deadline.signal })) {
        deadline.disarm();
        yield chunk;
        deadline.arm();
      }
    } catch (err) {
      throw this.failure(err, deadline, "cat", cid);
    } finally {
      deadline.disarm();
    }
  }

  async getBlock(cid: string, options: StoreCallOptions = {}): Promise<Uint8Array> {
    const parsed = this.parse(cid);
    return this.request("block/get", cid, options, (o) => this.client.block.get(parsed, o));
  }

  /**
   * Asks block/stat with `offline=true`: Kubo then answers at once from its own blockstore. The
   * js-ipfs daemon ignores `offline` and waits for the block like any get, so a block it lacks
   * shows as no answer within `hasTimeoutMs`; that counts as "not held" (a wrong "no" costs a
   * re-upload at worst, never a wrong "yes").
   */
  async has(cid: string, options: StoreCallOptions = {}): Promise<boolean> {
    const parsed = this.parse(cid);
    try {
      const wait = Math.min(this.timeoutMs, this.hasTimeoutMs);
      await this.request("block/stat", cid, options, (o) => this.client.block.stat(parsed, { ...o, offline: true } as typeof o), wait);
      return true;
    } catch (err) {
      if (err instanceof ContentStoreError && ["STORE_NOT_FOUND", "STORE_TIMEOUT"].includes(err.code)) return false;
      throw err;
    }
  }

  async pin(cid: string, options: StoreCallOptions = {}): Promise<void> {
    const parsed = this.parse(cid);
    await this.request("pin/add", cid, options, (o) => this.client.pin.add(parsed, { ...o, recursive: true }));
  }

  async unpin(cid: string, options: StoreCallOptions = {}): Promise<void> {
    const parsed = this.parse(cid);
    try {
      await this.request("pin/rm", cid, options, (o) => this.client.pin.rm(parsed, { ...o, recursive: true }));
    } catch (err) {
      // Refused because it is not pinned: nothing to undo. Asked again rather than read from the error text.
      if (err instanceof ContentStoreError && err.code === "STORE_FAILED" && !(await this.isPinned(cid, options))) return;
      throw err;
    }
  }

  async deleteBlocks(cids: string[], options: StoreCallOptions = {}): Promise<void> {
    if (cids.length === 0) return;
    const parsed = cids.map((c) => this.parse(c));
    // block/rm refuses pinned blocks and, with force, ignores missing ones.
    await this.request("block/rm", undefined, options, async (o) => {
      for await (const result of this.client.block.rm(parsed, { ...o, force: true })) void result;
    });
  }

  async isPinned(cid: string, options: StoreCallOptions = {}): Promise<boolean> {
    const parsed = this.parse(cid);
    return this.request("pin/ls", cid, options, async (o) => {
      try {
        for await (const _ of this.client.pin.ls({ ...o, paths: [parsed], type: "recursive" })) return true;
        return false;
      } catch (err) {
        // Kubo and js-ipfs both refuse to list a CID that is not pinned ("... is not pinned").
        if (err instanceof Error && /not pinned/i.test(err.message)) return false;
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    // The client holds no sockets of its own (Node's fetch pools them), so there is nothing else to release.
    this.closed = true;
  }

  /** Uploads one block and checks that the node filed it under the CID computed here. */
  private async putBlock(cid: CID, block: Uint8Array, deadline: Deadline): Promise<void> {
    // `format` + `version`, not `cid-codec`: js-ipfs ignores cid-codec, and Kubo still honours format.
    const put = { format: BLOCK_FORMATS[cid.code], mhtype: "sha2-256", version: 1 as const };
    let stored: CID | undefined;
    // A block is filed under its content's hash, so putting it again is harmless: a node that fails
    // one put (a reset connection, an answer that is not JSON) is asked again, PUT_ATTEMPTS times in
    // all, before the artifact is refused as the store's fault. Not after a timeout or a cancel.
    for (let attempt = 1; stored === undefined; attempt++) {
      deadline.arm();
      try {
        stored = await this.client.block.put(block, { ...put, signal: deadline.signal, timeout: deadline.ms });
      } catch (err) {
        const failure = this.failure(err, deadline, "block/put", cid.toString());
        if (attempt >= PUT_ATTEMPTS || !["STORE_FAILED", "STORE_UNREACHABLE"].includes(failure.code)) throw failure;
        await new Promise((resolve) => setTimeout(resolve, PUT_RETRY_MS * attempt));
      } finally {
        deadline.disarm();
      }
    }
    const [expected, filed] = [cid.toString(), stored.toString()];
    if (!stored.equals(cid)) {
      throw new ContentStoreError(
        "STORE_CID_MISMATCH",
        `the IPFS node at ${this.url} filed a block under ${filed} that is ${expected} here: it did not store it as asked ` +
          `(${put.format}, sha2-256, CIDv1), so the artifact would not be found by its CID; use a node whose block/put honours format and mhtype`,
        { details: { url: this.url, expected, stored: filed } },
      );
    }
  }

  /** One request to the node, bounded by `ms` on both sides (the node's `timeout` makes it stop too). */
  private async request<T>(
    what: string,
    cid: string | undefined,
    options: StoreCallOptions,
    run: (o: { signal: AbortSignal; timeout: number }) => Promise<T>,
    ms = this.timeoutMs,
  ): Promise<T> {
    this.assertOpen();
    const deadline = new Deadline(ms, options.signal);
    deadline.arm();
    try {
      return await run({ signal: deadline.signal, timeout: ms });
    } catch (err) {
      throw this.failure(err, deadline, what, cid);
    } finally {
      deadline.disarm();
    }
  }

  /** Names a failed request by its cause, with a message that says what to do. */
  private failure(err: unknown, deadline: Deadline, what: string, cid?: string): ContentStoreError {
    if (err instanceof ContentStoreError) return err;
    const target = cid === undefined ? what : `${what} ${cid}`;
    const text = err instanceof Error ? err.message : String(err);
    const o = { cause: err, details: { url: this.url, operation: what, cid } };
    if (deadline.expired || (err instanceof Error && err.name === "TimeoutError")) {
      return new ContentStoreError(
        "STORE_TIMEOUT",
        `the IPFS node at ${this.url} did not answer ${target} within ${deadline.ms} ms: it may lack the content ` +
          `(an offline node never finds it) or be overloaded; add the content to this node, or raise storage.timeoutMs`,
        o,
      );
    }
    if (deadline.signal.aborted) return new ContentStoreError("STORE_ABORTED", `${target} was cancelled by the caller`, o);
    if (err instanceof TypeError && text === "fetch failed") {
      return new ContentStoreError("STORE_UNREACHABLE", `no IPFS node answers at ${this.url}: start it or fix storage.url`, o);
    }
    if (/not found|could not find/i.test(text)) {
      return new ContentStoreError("STORE_NOT_FOUND", `the IPFS node at ${this.url} does not hold ${cid ?? "it"}: add it there first`, o);
    }
    return new ContentStoreError("STORE_FAILED", `the IPFS node at ${this.url} refused ${target}: ${text}`, o);
  }

  private parse(cid: string): CID {
    try {
      return this.cidClass.parse(cid);
    } catch (cause) {
      throw new ContentStoreError("STORE_BAD_CID", `"${cid}" is not a CID: pass the string that add or computeCid returned`, {
        cause,
        details: { cid },
      });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new ContentStoreError("STORE_CLOSED", `the store for ${this.url} was closed: open a new one`);
  }
}

/**
 * Aborts a call when the node stays silent for `ms` while we wait on it, or when the caller aborts.
 * Unlike AbortSignal.timeout it can be paused, so only time spent waiting on the node counts.
 */
class Deadline {
  readonly signal: AbortSignal;
  private readonly timer = new AbortController();
  private handle?: NodeJS.Timeout;

  constructor(
    readonly ms: number,
    caller?: AbortSignal,
  ) {
    this.signal = caller ? AbortSignal.any([caller, this.timer.signal]) : this.timer.signal;
  }

  arm(): void {
    clearTimeout(this.handle);
    this.handle = setTimeout(() => this.timer.abort(), this.ms);
  }

  disarm(): void {
    clearTimeout(this.handle);
  }

  get expired(): boolean {
    return this.timer.signal.aborted;
  }
}

function checkRange({ offset, length }: ByteRange): ByteRange {
  for (const [name, value] of [
    ["offset", offset],
    ["length", length],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new ContentStoreError("STORE_BAD_RANGE", `${name} must be a whole number of bytes >= 0, not ${value}`);
    }
  }
  return { offset, length };
}
