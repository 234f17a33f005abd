import path from "node:path";
import { Worker } from "node:worker_threads";
import { ChunkHashPipeline, type ChunkHashing } from "./chunkHashing";

/**
 * Below this size a worker thread costs more to start (~0.3 s under ts-node) than it saves.
 * Measured with bench/crypto.ts: the two paths break even near 170 MiB on 2 cores.
 */
export const WORKER_THRESHOLD = 160n * 1024n * 1024n;

/** Leaves and CID for an artifact of this plaintext size: on a worker thread for large images. */
export function chunkHashingFor(plaintextSize: bigint): ChunkHashing {
  return plaintextSize >= WORKER_THRESHOLD ? new WorkerChunkHashing() : new ChunkHashPipeline();
}

/**
 * The main thread's side of storedChunkHashWorker: hands each stored chunk to the worker (a copy,
 * transferred without a second copy) and waits when more than `maxInFlight` chunks are queued, so
 * memory stays bounded however fast the producer is.
 */
export class WorkerChunkHashing implements ChunkHashing {
  private readonly worker: Worker;
  private acked = 0;
  private sent = 0;
  private waiting: (() => void) | undefined;
  private readonly result: Promise<{ leaves: string[]; cid: string }>;

  constructor(private readonly maxInFlight = 16) {
    const file = path.join(__dirname, `storedChunkHashWorker${path.extname(__filename)}`);
    // Under ts-node the worker must load TypeScript too.
    const execArgv = __filename.endsWith(".ts") ? ["--require", "ts-node/register/transpile-only"] : [];
    this.worker = new Worker(file, { execArgv });
    this.result = new Promise((resolve, reject) => {
      this.worker.on("message", (m: { ack?: number; leaves?: string[]; cid?: string; error?: string }) => {
        if (m.ack !== undefined) {
          this.acked = m.ack;
          this.waiting?.();
        } else if (m.error !== undefined) reject(new Error(`chunk hashing failed: ${m.error}`));
        else resolve({ leaves: m.leaves!, cid: m.cid! });
      });
      this.worker.on("error", reject);
      this.worker.on("exit", (code) => reject(new Error(`the chunk hashing worker stopped (exit ${code})`)));
    });
    this.result
      .then(
        () => (this.ended = true),
        (err) => ((this.ended = true), (this.failure = err)),
      )
      .finally(() => this.waiting?.());
  }

  private ended = false; // the worker answered or died: a producer waiting for room must not wait forever
  private failure: unknown;

  async push(chunk: Uint8Array): Promise<void> {
    while (this.sent - this.acked >= this.maxInFlight && !this.ended) await new Promise<void>((resolve) => (this.waiting = resolve));
    if (this.ended) throw this.failure ?? new Error("the chunk hashing worker ended before the last chunk");
    const copy = new Uint8Array(chunk).buffer;
    this.worker.postMessage({ chunk: copy }, [copy]);
    this.sent += 1;
  }

  async finish(): Promise<{ leaves: string[]; cid: string }> {
    this.worker.postMessage({ end: true });
    try {
      return await this.result;
    } finally {
      await this.worker.terminate();
    }
  }

  async abort(): Promise<void> {
    await this.worker.terminate();
  }
}
