import { promises as fs } from "node:fs";
import { OtaError } from "../core/errors";
import { writeFileAtomic } from "../files/atomicFile";

export interface BlockRef {
  number: number;
  hash: string;
}

/** A processed block of the recent window, with the indexes of the logs delivered from it. */
export interface WindowBlock extends BlockRef {
  logs: number[];
}

/** Where the stream stands: everything up to `block` has been applied (or reverted) by the caller. */
export interface StreamState {
  block: number; // fromBlock - 1 before anything was processed
  hash: string | null; // null before anything was processed
  window: WindowBlock[]; // the last processed blocks, ascending: fork points and exactly-once keys
}

/** Persisted stream state. `save` must be atomic: after a crash `load` returns the old or the new state. */
export interface StreamStore {
  load(): Promise<StreamState | undefined>;
  save(state: StreamState): Promise<void>;
}

/** The stored state cannot be read: restarting from scratch would redeliver everything, so we refuse. */
export class StreamStateError extends OtaError {}

/** The state as a JSON file, replaced atomically on each save. */
export class FileStreamStore implements StreamStore {
  constructor(readonly file: string) {}

  async load(): Promise<StreamState | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      return checkState(JSON.parse(text));
    } catch (err) {
      throw new StreamStateError("STREAM_STATE_UNREADABLE", `stream state ${this.file} is not valid`, { cause: err });
    }
  }

  async save(state: StreamState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(state) + "\n");
  }
}

/** In memory, for tests and for callers that keep no state across restarts. */
export class MemoryStreamStore implements StreamStore {
  constructor(public state?: StreamState) {}

  async load(): Promise<StreamState | undefined> {
    return this.state && structuredClone(this.state);
  }

  async save(state: StreamState): Promise<void> {
    this.state = structuredClone(state);
  }
}

function checkState(s: StreamState): StreamState {
  const ok =
    Number.isSafeInteger(s.block) &&
    (s.hash === null || typeof s.hash === "string") &&
    Array.isArray(s.window) &&
    s.window.every((b) => Number.isSafeInteger(b.number) && typeof b.hash === "string" && Array.isArray(b.logs));
  if (!ok) throw new Error("unexpected shape");
  return s;
}
