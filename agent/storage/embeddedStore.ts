import { mkdir } from "node:fs/promises";
import path from "node:path";
import { importer } from "ipfs-unixfs-importer";
import { importOptions } from "./cid";
import { ContentStore, ContentStoreError, StoreCallOptions, ByteRange } from "./contentStore";
import { importEsm } from "./esm";
import { catFromBlocks } from "./dagBlocks";

// The few Helia shapes used here. The packages are ESM-only with "exports" maps that this
// CommonJS build (moduleResolution node) cannot read types from, so they are declared locally.
interface Cid {
  toString(): string;
}
interface Blockstore {
  put(cid: Cid, bytes: Uint8Array, options?: StoreCallOptions): Promise<Cid>;
  get(cid: Cid, options?: StoreCallOptions): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  has(cid: Cid, options?: StoreCallOptions): Promise<boolean>;
  delete(cid: Cid, options?: StoreCallOptions): Promise<void>;
}
interface Helia {
  blockstore: Blockstore;
  pins: {
    add(cid: Cid, options?: StoreCallOptions): AsyncIterable<unknown>;
    rm(cid: Cid, options?: StoreCallOptions): AsyncIterable<unknown>;
    isPinned(cid: Cid, options?: StoreCallOptions): Promise<boolean>;
  };
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The embedded default store: a Helia node in this process, light flavour (no libp2p: it makes
 * no network calls, opens no port), its blocks and pins persisted on disk under `directory`
 * (blockstore-fs, datastore-fs), so what was accepted survives a restart.
 */
export class EmbeddedStore implements ContentStore {
  readonly kind = "embedded";
  private closed = false;

  private constructor(
    private readonly helia: Helia,
    private readonly parseCid: (cid: string) => Cid,
    readonly directory: string,
    private readonly blockPath: (cid: Cid) => string,
  ) {}

  static async open({ directory }: { directory: string }): Promise<EmbeddedStore> {
    const { createHeliaLight } = await importEsm<{ createHeliaLight(init: object): Helia | Promise<Helia> }>("helia");
    const { FsBlockstore } = await importEsm<{ FsBlockstore: new (dir: string) => object }>("blockstore-fs");
    const { FsDatastore } = await importEsm<{ FsDatastore: new (dir: string) => object }>("datastore-fs");
    const { CID } = await importEsm<{ CID: { parse(s: string): Cid } }>("multiformats/cid");
    const blocks = path.join(directory, "blocks");
    const data = path.join(directory, "datastore");
    try {
      await mkdir(blocks, { recursive: true });
      await mkdir(data, { recursive: true });
    } catch (cause) {
      throw new ContentStoreError("STORE_DIRECTORY", `cannot create the store directory ${directory}: choose a writable storage.path`, { cause });
    }
    const blockstore = new FsBlockstore(blocks) as { shardingStrategy: { encode(cid: Cid): { dir: string; file: string } } };
    const helia = await createHeliaLight({ blockstore, datastore: new FsDatastore(data) });
    await helia.start();
    // Where blockstore-fs keeps a block: cat streams raw leaves from these files.
    const blockPath = (cid: Cid) => {
      const { dir, file } = blockstore.shardingStrategy.encode(cid);
      return path.join(blocks, dir, file);
    };
    return new EmbeddedStore(helia, CID.parse, directory, blockPath);
  }

  async add(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: StoreCallOptions & { onBlock?: (cid: string) => void } = {}): Promise<string> {
    this.open();
    // The project's importer and settings write straight into Helia's blockstore, so the CID
    // is computeCid's by construction.
    const blockstore = {
      put: async (cid: Cid, bytes: Uint8Array) => {
        const stored = await this.helia.blockstore.put(cid, bytes, { signal: options.signal });
        options.onBlock?.(cid.toString());
        return stored;
      },
    };
    let root: string | undefined;
    for await (const entry of importer([{ content }], blockstore as never, importOptions())) {
      root = entry.cid.toString();
    }
    if (!root) throw new ContentStoreError("STORE_ADD", "the importer produced no CID");
    return root;
  }

  async *cat(cid: string, options: StoreCallOptions & ByteRange = {}): AsyncIterable<Uint8Array> {
    this.open();
    const parsed = this.cid(cid);
    await this.requireLocal(parsed, cid, options);
    // Our own block walk: ~2.5x the generic UnixFS exporter's speed over blockstore-fs. The root
    // was found above; inner blocks are read without a second existence check each, and raw
    // leaves (all of an artifact's bytes) are streamed from their files in the range asked for.
    const reader = { getBlock: (c: string, o: StoreCallOptions) => this.readBlock(this.cid(c), c, o), rawFile: (c: string) => this.blockPath(this.cid(c)) };
    yield* catFromBlocks(reader, cid, { offset: options.offset, length: options.length }, { signal: options.signal });
  }

  async getBlock(cid: string, options: StoreCallOptions = {}): Promise<Uint8Array> {
    this.open();
    const parsed = this.cid(cid);
    await this.requireLocal(parsed, cid, options);
    return this.readBlock(parsed, cid, options);
  }

  private async readBlock(parsed: Cid, cid: string, options: StoreCallOptions): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    try {
      for await (const part of this.helia.blockstore.get(parsed, options)) parts.push(part);
    } catch (cause) {
      // A block missing under a root that is present: the DAG is incomplete here.
      if ((cause as { name?: string }).name === "NotFoundError") throw new ContentStoreError("STORE_NOT_FOUND", `the store does not hold ${cid}`, { cause });
      throw cause;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  async has(cid: string, options: StoreCallOptions = {}): Promise<boolean> {
    this.open();
    return this.helia.blockstore.has(this.cid(cid), options);
  }

  async pin(cid: string, options: StoreCallOptions = {}): Promise<void> {
    this.open();
    const parsed = this.cid(cid);
    if (await this.helia.pins.isPinned(parsed, options)) return;
    await this.requireLocal(parsed, cid, options);
    for await (const _ of this.helia.pins.add(parsed, options)); // drains the generator: pinning happens as it is read
  }

  async unpin(cid: string, options: StoreCallOptions = {}): Promise<void> {
    this.open();
    const parsed = this.cid(cid);
    if (!(await this.helia.pins.isPinned(parsed, options))) return;
    for await (const _ of this.helia.pins.rm(parsed, options)); // drains the generator: unpinning happens as it is read
  }

  async deleteBlocks(cids: string[], options: StoreCallOptions = {}): Promise<void> {
    this.open();
    for (const cid of cids) {
      const parsed = this.cid(cid);
      if (await this.helia.pins.isPinned(parsed, options)) continue;
      if (await this.helia.blockstore.has(parsed, options)) await this.helia.blockstore.delete(parsed, options);
    }
  }

  async isPinned(cid: string, options: StoreCallOptions = {}): Promise<boolean> {
    this.open();
    return this.helia.pins.isPinned(this.cid(cid), options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.helia.stop();
  }

  private open(): void {
    if (this.closed) throw new ContentStoreError("STORE_CLOSED", "the embedded store is closed");
  }

  private cid(cid: string): Cid {
    try {
      return this.parseCid(cid);
    } catch (cause) {
      throw new ContentStoreError("STORE_BAD_CID", `"${cid}" is not a CID`, { cause });
    }
  }

  // A light node has no network to fetch from: a missing block is an answer, not a wait.
  private async requireLocal(parsed: Cid, cid: string, options: StoreCallOptions): Promise<void> {
    if (!(await this.helia.blockstore.has(parsed, options))) {
      throw new ContentStoreError("STORE_NOT_FOUND", `the store does not hold ${cid}`);
    }
  }
}
