import { chunkLeaf } from "../crypto/chunkLeaf";
import { computeCid } from "../storage/cid";

/** Computes the stored chunks' Merkle leaves and the artifact's CID as chunks are pushed. */
export interface ChunkHashing {
  push(chunk: Uint8Array): Promise<void>;
  finish(): Promise<{ leaves: string[]; cid: string }>;
  abort(): Promise<void>;
}

/**
 * Leaves and CID on this thread: the CID importer pulls chunks from a queue of at most
 * `maxQueued`, so a fast producer waits instead of buffering the artifact.
 */
export class ChunkHashPipeline implements ChunkHashing {
  readonly leaves: string[] = [];
  private readonly queue: (Uint8Array | null)[] = [];
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;
  private readonly cid: Promise<string>;
  private ended = false; // the importer stopped: a producer waiting for room must not wait forever
  private failure: unknown;

  constructor(
    private readonly onTaken: (count: number) => void = () => {},
    private readonly maxQueued = 16,
  ) {
    this.cid = computeCid(this.chunks());
    this.cid
      .then(
        () => (this.ended = true),
        (err) => ((this.ended = true), (this.failure = err)),
      )
      .finally(() => this.wakeProducer?.());
  }

  /** Queues a chunk; the CID computation has failed if this throws at finish. */
  async push(chunk: Uint8Array): Promise<void> {
    while (this.queue.length >= this.maxQueued && !this.ended) await new Promise<void>((resolve) => (this.wakeProducer = resolve));
    if (this.ended) throw this.failure ?? new Error("the CID computation ended before the last chunk");
    this.queue.push(chunk);
    this.wakeConsumer?.();
  }

  async finish(): Promise<{ leaves: string[]; cid: string }> {
    this.queue.push(null);
    this.wakeConsumer?.();
    return { leaves: this.leaves, cid: await this.cid };
  }

  async abort(): Promise<void> {
    this.queue.length = 0;
    this.queue.push(null);
    this.wakeConsumer?.();
    await this.cid.catch(() => {});
  }

  private async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.queue.length === 0) await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      const chunk = this.queue.shift()!;
      this.wakeProducer?.();
      if (chunk === null) return;
      this.leaves.push(chunkLeaf(this.leaves.length, chunk));
      this.onTaken(this.leaves.length);
      yield chunk;
    }
  }
}
