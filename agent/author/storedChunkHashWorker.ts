/**
 * Worker thread for WorkerChunkHashing: runs a ChunkHashPipeline (the stored chunks' Merkle
 * leaves and the artifact's CID) on a second core. Messages in: {chunk: ArrayBuffer} (transferred),
 * then {end: true}. Out: {ack: n} per chunk taken, then {leaves, cid} or {error}.
 */
import { parentPort } from "node:worker_threads";
import { ChunkHashPipeline } from "./chunkHashing";

const port = parentPort!;
const pipeline = new ChunkHashPipeline((count) => port.postMessage({ ack: count }));
let pending: Promise<void> = Promise.resolve();

port.on("message", (m: { chunk?: ArrayBuffer; end?: boolean }) => {
  pending = pending.then(async () => {
    if (!m.end) return pipeline.push(new Uint8Array(m.chunk!));
    try {
      port.postMessage(await pipeline.finish());
    } catch (err) {
      port.postMessage({ error: (err as Error).message });
    }
  });
});
