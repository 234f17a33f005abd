import { createReadStream, promises as fs } from "node:fs";
import { OtaError } from "../core/errors";
import { ContentRejected, DownloadRejected, reportCodeOf } from "../core/updateErrors";
import { isDeliveryFault } from "../core/updateOutcome";
import type { SourceHealth, SourceKind } from "../core/statusReport";
import { decryptArtifact, type ArtifactHeader } from "../crypto/artifactCipher";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { writeFileAtomic } from "../files/atomicFile";
import { downloadArtifact, fetchLeaves, fetchWrappedKey, VerifiedArtifact, type DownloadOptions } from "./downloadRelease";
import { fetchFromGateway } from "./gatewayDownload";
import { ServerClock } from "./serverClock";

export type { SourceHealth, SourceKind };

/** Where a device may fetch a release from (X.1368 REQ-10f-ii, availability of images). */
export interface DeliverySource {
  kind: SourceKind; // "server": a firmware server (artifact, chunk list, wrapped key); "gateway": an IPFS trustless gateway (blocks only)
  url: string;
}

/** Delivery faults that say nothing against the source that reported them: it keeps its place. */
const NOT_THE_SOURCES_FAULT: ReadonlySet<string> = new Set(["KEY_NOT_GRANTED"]);

const STATE_VERSION = 1;

/**
 * A device's sources in the order to try them, with each one's health: a source that served wrong
 * bytes, answered 5xx or could not be reached is demoted (tried after the others, the longest
 * demoted first) until it delivers again. The health is kept in `stateFile` (atomically) across
 * restarts, and is what the status report carries (`sources`). Each firmware server has its own
 * clock correction (serverClock.ts).
 */
export class SourceSet {
  private readonly health = new Map<string, SourceHealth>();
  private readonly clocks = new Map<string, ServerClock>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly sources: readonly DeliverySource[],
    private readonly o: { stateFile?: string; now?: () => number; deviceClock?: () => number; maxClockCorrectionMs?: number; log?: (line: string) => void },
  ) {
    for (const s of sources) this.health.set(keyOf(s), { url: s.url, kind: s.kind, lastCode: null, failures: 0, demotedAt: null });
  }

  /**
   * The sources with the health remembered in `stateFile` (if any). At least one firmware server
   * is needed: a gateway serves blocks, never keys (DEVICE_CONFIG otherwise).
   */
  static async open(
    sources: DeliverySource[],
    o: { stateFile?: string; now?: () => number; deviceClock?: () => number; maxClockCorrectionMs?: number; log?: (line: string) => void } = {},
  ): Promise<SourceSet> {
    const seen = new Set<string>();
    const list = sources.map((s) => ({ kind: s.kind, url: normalUrl(s.url) })).filter((s) => !seen.has(keyOf(s)) && seen.add(keyOf(s)));
    if (!list.some((s) => s.kind === "server"))
      throw new OtaError(
        "DEVICE_CONFIG",
        "the device's sources name no firmware server: a gateway serves blocks only, the wrapped key comes from a firmware server",
      );
    const set = new SourceSet(list, o);
    if (o.stateFile) await set.load(o.stateFile);
    return set;
  }

  private async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch {
      return; // first start
    }
    try {
      const state = JSON.parse(text) as { version?: unknown; sources?: unknown };
      if (state.version !== STATE_VERSION || !Array.isArray(state.sources)) throw new Error("not this format");
      for (const h of state.sources as Partial<SourceHealth>[]) {
        const mine = this.health.get(`${h.kind} ${h.url}`);
        if (!mine) continue; // a source no longer configured
        mine.lastCode = typeof h.lastCode === "string" ? h.lastCode.slice(0, 64) : null;
        mine.failures = Number.isSafeInteger(h.failures) && h.failures! >= 0 ? h.failures! : 0;
        mine.demotedAt = Number.isSafeInteger(h.demotedAt) ? h.demotedAt! : null;
        if (Number.isSafeInteger(h.lastOkAt)) mine.lastOkAt = h.lastOkAt!;
      }
    } catch (err) {
      this.o.log?.(`sources: ${file} is unreadable (${(err as Error).message}); starting with every source healthy`);
    }
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The order to try them in: the healthy ones as configured, then the demoted, longest demoted first. */
  ordered(): DeliverySource[] {
    const demotedAt = (s: DeliverySource) => this.health.get(keyOf(s))!.demotedAt;
    const healthy = this.sources.filter((s) => demotedAt(s) === null);
    const demoted = this.sources.filter((s) => demotedAt(s) !== null).sort((a, b) => demotedAt(a)! - demotedAt(b)!);
    return [...healthy, ...demoted];
  }

  /** Each source's health, for the status report, in the order they would be tried now. */
  report(): SourceHealth[] {
    return this.ordered().map((s) => ({ ...this.health.get(keyOf(s))! }));
  }

  /** The time requests to this firmware server are signed with. */
  clock(url: string): ServerClock {
    let c = this.clocks.get(url);
    if (!c) {
      c = new ServerClock(url, { now: this.o.deviceClock, maxCorrectionMs: this.o.maxClockCorrectionMs, log: this.o.log });
      this.clocks.set(url, c);
    }
    return c;
  }

  /** A source failed with `code`; a delivery fault of its own demotes it (tried last from now on). */
  async noteFailure(source: DeliverySource, code: string, o: { demote?: boolean } = {}): Promise<void> {
    const h = this.health.get(keyOf(source));
    if (!h) return;
    h.lastCode = code;
    const demote = o.demote ?? (isDeliveryFault(code) && !NOT_THE_SOURCES_FAULT.has(code));
    if (demote) {
      h.failures += 1;
      if (h.demotedAt === null) {
        h.demotedAt = this.now();
        this.o.log?.(`sources: ${source.kind} ${source.url} demoted (${code}); it is tried after the others until it delivers again`);
      }
    }
    await this.save();
  }

  /** A source delivered: it takes its configured place again. */
  async noteSuccess(source: DeliverySource): Promise<void> {
    const h = this.health.get(keyOf(source));
    if (!h) return;
    if (h.demotedAt !== null) this.o.log?.(`sources: ${source.kind} ${source.url} delivered again; back in its place`);
    h.lastCode = "OK";
    h.demotedAt = null;
    h.lastOkAt = this.now();
    await this.save();
  }

  private save(): Promise<void> {
    const file = this.o.stateFile;
    if (!file) return Promise.resolve();
    const text = JSON.stringify({ version: STATE_VERSION, sources: [...this.health.values()] }, null, 2) + "\n";
    this.saving = this.saving
      .catch(() => {})
      .then(() => writeFileAtomic(file, text, { durable: false })) // a preference order: losing the last change to a power cut costs nothing
      .catch((err) => this.o.log?.(`sources: cannot save ${file}: ${(err as Error).message}`));
    return this.saving;
  }
}

function keyOf(s: DeliverySource): string {
  return `${s.kind} ${s.url}`;
}

function normalUrl(url: string): string {
  const u = new URL(url);
  return u.href.replace(/\/$/, "");
}

/**
 * The longest a device waits, by default, before it starts a download it has just learned of
 * (DeviceAgentOptions.download.startJitterMs, device.json `startJitterMs`): devices that learn of
 * a release at the same moment (one ledger event, one tracker notice) spread their first requests
 * over this window instead of reaching the server in the same millisecond. 2 s is a fifth of a
 * 10 s fleet budget.
 */
export const DEFAULT_START_JITTER_MS = 2000;

/** The most a start jitter may be (ms): a longer wait is a configuration error, not a spread. */
export const MAX_START_JITTER_MS = 10 * 60_000;

/**
 * Waits a delay drawn uniformly from [0, maxMs] (0: no wait) and returns it: a fleet's bounded,
 * jittered start. `random` is for tests.
 */
export async function startJitter(maxMs: number, random: () => number = Math.random): Promise<number> {
  if (!Number.isFinite(maxMs) || maxMs < 0 || maxMs > MAX_START_JITTER_MS)
    throw new OtaError("DEVICE_CONFIG", `a start jitter is 0..${MAX_START_JITTER_MS} ms, not ${maxMs}: 0 disables it`);
  if (maxMs === 0) return 0;
  const delay = Math.floor(random() * (maxMs + 1));
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  return delay;
}

export interface Delivered {
  wrappedKey: Buffer;
  header: ArtifactHeader;
  resumedFrom: number; // chunks already verified on disk when the source that completed it started
  source: DeliverySource; // the source the artifact's last bytes came from
}

/** One source's failure within a delivery: what `details.sources` of the thrown error lists. */
export interface SourceAttempt {
  url: string;
  kind: SourceKind;
  code: string;
}

/**
 * One round of delivery (X.1368 REQ-10f-ii): the sources in `set`'s order, each going on from the
 * last chunk verified on disk, whoever sent it. Every byte is checked against the ledger record as
 * downloadArtifact does (chunks against the Merkle root; a gateway's blocks against their CIDs
 * first); the wrapped key comes from a firmware server and must open with the device's key, else
 * the next server's is taken. A source that fails is noted in `set` (demoted for a fault of its
 * own) and the next one is tried. Throws the last source's error, its `details.sources` naming
 * every source tried and its code; an error that is no source's (the disk) is thrown at once.
 */
export async function downloadFromSources(set: SourceSet | DeliverySource[], o: Omit<DownloadOptions, "serverUrl" | "clock">): Promise<Delivered> {
  const sources = Array.isArray(set) ? await SourceSet.open(set) : set;
  const tried: SourceAttempt[] = [];
  let last: OtaError | undefined;
  let leaves: string[] | undefined; // from the first server whose chunk list hashes to the ledger's root
  const fail = async (source: DeliverySource, err: unknown, demote?: boolean) => {
    if (!(err instanceof OtaError)) throw err;
    tried.push({ url: source.url, kind: source.kind, code: err.code });
    await sources.noteFailure(source, err.code, { demote });
    last = err;
  };
  const serverOptions = (url: string) => ({ ...o, serverUrl: url, clock: sources.clock(url) });
  // The chunk list and the key are small answers any firmware server gives; a server that fails
  // to give them is noted as for the artifact.
  // `except`: a server already asked (its error, `failed`, stands when there is no other to ask).
  const fromServers = async <T>(what: (server: DeliverySource) => Promise<T>, except?: { server: DeliverySource; failed: unknown }): Promise<T> => {
    const servers = sources.ordered().filter((s) => s.kind === "server" && s !== except?.server);
    let error: unknown = except?.failed ?? new OtaError("SOURCE_FAILED", "no firmware server to ask");
    for (const server of servers) {
      try {
        const answer = await what(server);
        await sources.noteSuccess(server);
        return answer;
      } catch (err) {
        await fail(server, err);
        error = err;
      }
    }
    throw error;
  };
  const keyFrom = (except?: { server: DeliverySource; failed: unknown }) =>
    fromServers(async (s) => checkKey(o, await fetchWrappedKey(serverOptions(s.url)), o.artifactFile), except);
  const elsewhere = (err: unknown): never => {
    throw err instanceof OtaError ? new FailedElsewhere(err) : err;
  };

  for (const source of sources.ordered()) {
    try {
      let delivered: Omit<Delivered, "wrappedKey" | "source">;
      let wrappedKey: Buffer | undefined;
      let keyFailed: { server: DeliverySource; failed: unknown } | undefined;
      if (source.kind === "server") {
        const r = await downloadArtifact({ ...serverOptions(source.url) });
        delivered = r;
        try {
          wrappedKey = await checkKey(o, r.wrappedKey, o.artifactFile);
          await sources.noteSuccess(source);
        } catch (err) {
          await fail(source, err); // its artifact verified, its key did not: another server's key
          keyFailed = { server: source, failed: err };
        }
      } else {
        delivered = await fromGateway(source);
        await sources.noteSuccess(source);
      }
      // The artifact is whole and verified on disk: only the key is missing, which no further
      // source of this round would give otherwise than the servers just asked.
      wrappedKey ??= await keyFrom(keyFailed).catch(elsewhere);
      return { ...delivered, wrappedKey, source };
    } catch (err) {
      if (err instanceof FailedElsewhere) {
        last = err.inner; // each server that failed is in `tried` already
        break;
      }
      await fail(source, err);
    }
  }
  const error = last ?? new OtaError("SOURCE_FAILED", "no source to download from");
  Object.assign(error.details, { sources: tried });
  throw error;

  async function fromGateway(gateway: DeliverySource): Promise<Omit<Delivered, "wrappedKey" | "source">> {
    // No server gave a chunk list that hashes to the ledger's root: not the gateway's doing, and
    // nothing any further source of this round could check bytes with.
    leaves ??= await fromServers((s) => fetchLeaves(serverOptions(s.url))).catch(elsewhere);
    const sink = await VerifiedArtifact.open(o.artifactFile, o.release.record, leaves, o.onChunk);
    try {
      await fetchFromGateway({ gatewayUrl: gateway.url, release: o.release, sink, timeoutMs: o.timeoutMs });
      if (!sink.complete)
        throw new DownloadRejected("ARTIFACT_TRUNCATED", `${gateway.url}: the artifact's blocks ended after ${sink.chunks} of ${leaves.length} chunks`);
      await sink.finish();
      return { header: sink.header!, resumedFrom: sink.resumedFrom };
    } finally {
      await sink.close();
    }
  }
}

/**
 * The device's wrapped key for a release from the first firmware server (in `set`'s order) whose
 * key opens with the device's key and, given the verified `artifactFile`, opens its first chunk
 * (a manual install brings its own bytes, not its key).
 */
export async function wrappedKeyFromSources(
  set: SourceSet | DeliverySource[],
  o: Omit<DownloadOptions, "serverUrl" | "clock" | "artifactFile" | "onChunk"> & { artifactFile?: string },
): Promise<{ wrappedKey: Buffer; source: DeliverySource }> {
  const sources = Array.isArray(set) ? await SourceSet.open(set) : set;
  const tried: SourceAttempt[] = [];
  let last: OtaError | undefined;
  for (const server of sources.ordered().filter((s) => s.kind === "server")) {
    try {
      const wrappedKey = await checkKey(o, await fetchWrappedKey({ ...o, serverUrl: server.url, clock: sources.clock(server.url) }), o.artifactFile);
      await sources.noteSuccess(server);
      return { wrappedKey, source: server };
    } catch (err) {
      if (!(err instanceof OtaError)) throw err;
      tried.push({ url: server.url, kind: server.kind, code: err.code });
      await sources.noteFailure(server, err.code);
      last = err;
    }
  }
  const error = last ?? new OtaError("SOURCE_FAILED", "no firmware server to ask for the wrapped key");
  Object.assign(error.details, { sources: tried });
  throw error;
}

/**
 * The wrapped key, if it opens with this device's key for this release (else KEY_UNWRAP_FAILED:
 * another release's or device's) and, given the verified artifact, if the content key opens its
 * first chunk (else KEY_MISMATCH: a key the server made up). Checked here, where the next server's
 * key can still be asked for, not only once decryption starts (ADR 0009).
 */
async function checkKey(o: Pick<DownloadOptions, "device" | "release">, wrapped: Buffer, artifactFile?: string): Promise<Buffer> {
  let key: Buffer;
  try {
    key = unwrapContentKey(wrapped, Buffer.from(o.device.privateKey.replace(/^0x/, ""), "hex"), keyWrapContext(o.release.id, o.device.credential.record.id));
  } catch (cause) {
    throw new ContentRejected("KEY_UNWRAP_FAILED", "the wrapped key does not open with this device's key: another release's or device's", { cause });
  }
  if (artifactFile !== undefined && !(await opensFirstChunk(key, artifactFile)))
    throw new ContentRejected(
      "KEY_MISMATCH",
      "the content key this server wrapped does not open the release's first chunk (verified against the ledger): not the release's key",
    );
  return wrapped;
}

/** Whether `key` authenticates the first sealed chunk of the verified artifact on disk (true when it has none). */
async function opensFirstChunk(key: Buffer, artifactFile: string): Promise<boolean> {
  if (key.length !== 32) return false;
  const chunks = decryptArtifact(key, createReadStream(artifactFile, { highWaterMark: 1024 * 1024 }));
  try {
    await chunks.next();
    return true;
  } catch (err) {
    if (reportCodeOf(err) === "CHUNK_AUTHENTICATION") return false;
    throw err;
  } finally {
    await chunks.return(undefined);
  }
}

/** What a source needed from the firmware servers (the chunk list, the key) failed there: not that source's doing. */
class FailedElsewhere extends OtaError {
  constructor(readonly inner: OtaError) {
    super(inner.code, inner.message);
  }
}
