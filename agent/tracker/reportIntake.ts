import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { AuthenticationError, InputError, OtaError } from "../core/errors";
import { openMessage, recoverMessageSigner, type Envelope, type OpenedMessage } from "../crypto/sealedMessage";
import { commitmentOf, openWithSession, sessionKey, sessionRestKey, unwrapSessionKey, wrapSessionKey, type SessionEnvelope } from "../crypto/reportSession";
import { publicKeyOf } from "../crypto/secp256k1";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import { StatusReportSchema } from "../core/statusReportSchema";
import { describeIssues } from "../core/schemaIssues";
import { ReportEnvelope as ReportEnvelopeSchema } from "./http/schemas/messages";
import type { DeviceRow, FleetStore } from "./store";
import { introduceBatchDevice } from "./ledgerMirror";
import { checkDeviceRecord } from "../crypto/deviceTree";

/** A report the tracker does not take: unknown or inactive device, wrong key, replay. */
export class ReportRefused extends AuthenticationError {}

/** A report as its device signed it: what a module forwards to the module above it. */
export interface SignedReport {
  message: OpenedMessage<StatusReport>;
  signature: string;
}

/**
 * A report the intake took: a full sealed report comes with its device's signature (to forward
 * upstream); a session report (ADR 0013) has none. `session`: the report session this report
 * opened, for the answer to tell the device.
 */
export interface TakenReport {
  message: OpenedMessage<StatusReport>;
  signature?: string;
  session?: { id: string; expiresAt: number };
}

/** A posted report: a full sealed report, or one sealed under a report session (ADR 0013). */
export type ReportEnvelope = Envelope | SessionEnvelope;
/** A report envelope as the schema reads it (agent/tracker/http/schemas/messages.ts). */
type ReportEnvelopeWire = import("zod").infer<typeof ReportEnvelopeSchema>;

/** Report sessions last this long unless the module says otherwise; the device then opens a new one with a full report. */
export const REPORT_SESSION_MAX_AGE_MS = 24 * 60 * 60_000;

/**
 * Takes one sealed status report addressed to this tracker module (PROC-5): it must open with the
 * module's key, and pass {@link acceptReport}. Returns the report as signed, to forward upstream.
 */
export function takeSealedReport(db: FleetStore, envelope: Envelope, module: { id: string; privateKey: string }, now: number): SignedReport {
  const { message, signedBy, signature } = openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  acceptReport(db, message, bySignature(signedBy), now, module.id);
  return { message, signature };
}

/** One report's outcome in a batch: taken (as signed, to forward) or refused with the error a single intake would throw. */
export type BatchedReport = { ok: true; report: TakenReport } | { ok: false; error: Error };

/**
 * Takes several sealed reports with one durable commit (one WAL fsync for the batch instead of one
 * per report): each report is opened and passes exactly the checks of {@link takeSealedReport},
 * and one that is refused (or fails) leaves the others and the database as they were. Reports of
 * the same device are taken in array order. Returns when the batch is committed: a caller answers
 * the devices only then, so a report acknowledged is a report stored.
 */
export function takeSealedReports(db: FleetStore, envelopes: readonly Envelope[], module: { id: string; privateKey: string }, now: number): BatchedReport[] {
  // The cryptography first, outside the transaction, so the write lock is held only for the writes.
  return commitOpened(
    db,
    envelopes.map((envelope) => openReport(envelope, module)),
    now,
    module.id,
  );
}

/**
 * The envelope of a report posted to this module, checked before anything costly is done with it
 * (the opening's key exchange and signature recovery): its shape is the one schema both intakes
 * read (agent/tracker/http/schemas ReportEnvelope: POST /v1/reports validates it as its body, the
 * MQTT intake here), refused MESSAGE_MALFORMED naming the field; then {@link checkReportEnvelope}.
 */
export function reportEnvelope(value: unknown, moduleId: string): ReportEnvelope {
  const parsed = ReportEnvelopeSchema.safeParse(value);
  if (!parsed.success) throw new InputError("MESSAGE_MALFORMED", describeIssues(parsed.error, "the envelope"));
  return checkReportEnvelope(parsed.data, moduleId);
}

/** A well-formed report envelope that is for this module and is a status report; refused as not for this module, or not a report, otherwise. */
export function checkReportEnvelope(e: ReportEnvelopeWire, moduleId: string): ReportEnvelope {
  if (e.to.toLowerCase() !== moduleId.toLowerCase()) throw new AuthenticationError("MESSAGE_NOT_FOR_ME", `the report is for ${e.to}, not ${moduleId}`);
  if (e.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${e.kind.slice(0, 40)} message is not a status report`);
  return e as ReportEnvelope;
}

const isSessionEnvelope = (e: ReportEnvelope): e is SessionEnvelope => typeof (e as Partial<SessionEnvelope>).session === "string";

/** A full report opened (its signer recovered), or a session report, opened in the transaction that checks its session. */
type Opened = { message: OpenedMessage<StatusReport>; signedBy: string; signature: string; beside?: Record<string, string> } | { session: SessionEnvelope };

function openReport(envelope: ReportEnvelope, module: { id: string; privateKey: string }): Opened | Error {
  if (isSessionEnvelope(envelope)) return { session: envelope };
  try {
    return openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  } catch (error) {
    return error as Error;
  }
}

/** What a module needs to keep report sessions (ADR 0013). */
interface Sessions {
  moduleId: string;
  moduleKey: string; // its compressed public key, 0x hex: a session made under another one is over
  restKey: Buffer; // wraps the session keys in the database (reportSession.sessionRestKey)
  maxAgeMs: number;
  /** Keys unwrapped, by session id, with the wrapped bytes they came from: a hit only for the very row in the database. */
  unwrapped: Map<string, { wrapped: Buffer; key: Buffer }>;
}

/** Session keys kept unwrapped in memory at most (about 150 bytes each); past it the cache starts again. */
const UNWRAPPED_MAX = 200_000;

function sessionKeyOf(sessions: Sessions, row: { wrappedKey: Buffer; deviceId: string; sessionId: string }): Buffer | undefined {
  const hit = sessions.unwrapped.get(row.sessionId);
  if (hit && hit.wrapped.equals(row.wrappedKey)) return hit.key;
  const key = unwrapSessionKey(row.wrappedKey, sessions.restKey, row.deviceId, row.sessionId);
  if (!key) return undefined;
  if (sessions.unwrapped.size >= UNWRAPPED_MAX) sessions.unwrapped.clear();
  sessions.unwrapped.set(row.sessionId, { wrapped: Buffer.from(row.wrappedKey), key });
  return key;
}

/** Checks and stores opened reports in one transaction, each in its own savepoint. */
function commitOpened(db: FleetStore, opened: readonly (Opened | Error)[], now: number, via: string, sessions?: Sessions): BatchedReport[] {
  if (opened.length === 0) return [];
  return db.transaction(() =>
    opened.map((o): BatchedReport => {
      if (o instanceof Error) return { ok: false, error: o };
      try {
        // A refusal or failure undoes only this report's writes (and the session it would open). A
        // session report writes only through FleetStore.reports.take, atomic on its own: no savepoint more.
        return {
          ok: true,
          report: "session" in o ? takeSessionReport(db, o.session, now, via, sessions) : db.transaction(() => takeFull(db, o, now, via, sessions)),
        };
      } catch (error) {
        return { ok: false, error: error as Error };
      }
    }),
  );
}

/** A full sealed report, and the session it offers if the module keeps sessions and the offer holds. */
function takeFull(db: FleetStore, o: Extract<Opened, { signedBy: string }>, now: number, via: string, sessions?: Sessions): TakenReport {
  const { report, device } = acceptReport(db, o.message, bySignature(o.signedBy), now, via);
  const offer = report.session;
  const secret = o.beside?.sessionSecret;
  // The secret must be the one the device signed (its commitment): no one else can put a key in a device's name.
  if (
    !sessions ||
    !offer ||
    typeof offer.id !== "string" ||
    !/^0x[0-9a-fA-F]{32}$/.test(offer.id) ||
    typeof secret !== "string" ||
    !/^0x[0-9a-fA-F]{64}$/.test(secret) ||
    typeof offer.commitment !== "string" ||
    commitmentOf(secret) !== offer.commitment.toLowerCase()
  ) {
    return { message: o.message, signature: o.signature };
  }
  const key = sessionKey(secret, offer.id, device.id, sessions.moduleId);
  db.sessions.put({
    deviceId: device.id,
    sessionId: offer.id,
    wrappedKey: wrapSessionKey(key, sessions.restKey, device.id, offer.id.toLowerCase()),
    deviceKey: device.publicKey,
    moduleKey: sessions.moduleKey,
    establishedAt: now,
  });
  return { message: o.message, signature: o.signature, session: { id: offer.id.toLowerCase(), expiresAt: now + sessions.maxAgeMs } };
}

/**
 * A report sealed under a report session: the device's session with this module, made under the
 * module's current key and the device's current enrolled key, not expired, and the report opens
 * under its key (which authenticates it as the device's). Then the checks of every report.
 */
function takeSessionReport(db: FleetStore, envelope: SessionEnvelope, now: number, via: string, sessions?: Sessions): TakenReport {
  const fallBack = "send a full sealed report (it opens a new session)";
  if (!sessions) throw new ReportRefused("REPORT_SESSION_UNKNOWN", `this module keeps no report sessions: ${fallBack}`);
  const row = db.sessions.get(envelope.from);
  const id = envelope.session.toLowerCase();
  if (!row || row.sessionId !== id) {
    // A suspended or withdrawn device lost its session: it is told why, as a full report would be.
    const device = db.devices.get(envelope.from);
    if (device && device.standing !== "active") throw new ReportRefused("REPORT_DEVICE_NOT_ACTIVE", `device ${envelope.from} is ${device.standing}`);
    throw new ReportRefused("REPORT_SESSION_UNKNOWN", `device ${envelope.from} has no report session ${id} here: ${fallBack}`);
  }
  if (row.moduleKey !== sessions.moduleKey.toLowerCase())
    throw new ReportRefused("REPORT_SESSION_UNKNOWN", `report session ${id} was made under the module's previous key: ${fallBack}`);
  if (now - row.establishedAt > sessions.maxAgeMs) throw new ReportRefused("REPORT_SESSION_UNKNOWN", `report session ${id} has expired: ${fallBack}`);
  const key = sessionKeyOf(sessions, row);
  if (!key) throw new ReportRefused("REPORT_SESSION_UNKNOWN", `report session ${id} was kept under another module key: ${fallBack}`);
  const message = openWithSession<StatusReport>(envelope, key);
  acceptReport(
    db,
    message,
    (device) => {
      if (row.deviceKey !== device.publicKey.toLowerCase())
        throw new ReportRefused("REPORT_SESSION_UNKNOWN", `report session ${id} was made under device ${device.id}'s previous key: ${fallBack}`);
    },
    now,
    via,
  );
  return { message };
}

export interface ReportIntakeOptions {
  /** Threads that open reports and recover their signers (default: one per core; 0: the calling thread). */
  workers?: number;
  /** Most reports per transaction (default 256). */
  maxBatch?: number;
  /**
   * Keep report sessions (ADR 0013; default true): a full report's session offer is taken, and
   * reports sealed under a session are opened. A module that forwards reports upstream keeps none:
   * its parent checks each device's own signature.
   */
  sessions?: boolean;
  /** How long a report session lasts (default REPORT_SESSION_MAX_AGE_MS). */
  sessionMaxAgeMs?: number;
}

/** Reports waiting at once that make the intake start its worker threads. */
const SPAWN_AT = 8;

interface Waiter {
  envelope: ReportEnvelope;
  resolve: (r: TakenReport) => void;
  reject: (e: Error) => void;
}

/**
 * The tracker's report intake under load (issue 5). Reports that arrive together (concurrent
 * requests) are opened on worker threads and stored several per transaction, one commit per batch,
 * while the next batch is being opened; each caller's promise settles once its own report's batch
 * is committed (a report acknowledged is a report stored), with what {@link takeSealedReport}
 * returns or throws. A lone report waits for nothing: it is a batch of one. The worker threads
 * start with `start()`, or the first time reports queue up; until they are up, reports are opened
 * on the calling thread.
 */
export class ReportIntake {
  private readonly queue: Waiter[] = [];
  private running: Promise<void> | undefined;
  private readonly workerCount: number;
  private readonly maxBatch: number;
  private workers: PoolWorker[] | undefined;
  private readonly replies = new Map<number, { resolve: (r: OpenedReply[]) => void; reject: (e: Error) => void; worker: Worker }>();
  private nextMessage = 0;
  private closed = false;
  private readonly sessions: Sessions | undefined;

  constructor(
    private readonly db: FleetStore,
    private readonly module: { id: string; privateKey: string },
    private readonly now: () => number = Date.now,
    options: ReportIntakeOptions = {},
  ) {
    this.workerCount = Math.max(0, Math.floor(options.workers ?? os.availableParallelism?.() ?? os.cpus().length));
    this.maxBatch = Math.max(1, options.maxBatch ?? 256);
    if (options.sessions ?? true) {
      const privateKey = Buffer.from(module.privateKey.replace(/^0x/, ""), "hex");
      this.sessions = {
        moduleId: module.id,
        moduleKey: "0x" + publicKeyOf(privateKey).toString("hex"),
        restKey: sessionRestKey(module.privateKey),
        maxAgeMs: options.sessionMaxAgeMs ?? REPORT_SESSION_MAX_AGE_MS,
        unwrapped: new Map(),
      };
    }
  }

  /** Takes one report, sealed in full or under a session; settles when it is stored (or refused). */
  take(envelope: ReportEnvelope): Promise<TakenReport> {
    if (this.closed) return Promise.reject(new OtaError("INTAKE_CLOSED", "the tracker is stopping: report not taken"));
    return new Promise<TakenReport>((resolve, reject) => {
      this.queue.push({ envelope, resolve, reject });
      this.schedule();
    });
  }

  /** Drains the queue, from the next turn of the event loop (what arrives meanwhile joins the batch). */
  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = new Promise<void>((done) => setImmediate(done))
      .then(() => this.drain())
      .finally(() => {
        this.running = undefined;
        this.schedule(); // reports handed in after the last batch was taken
      });
  }

  /** Starts the worker threads now rather than at the first report, and waits until they are up. */
  async start(): Promise<void> {
    await Promise.all(this.pool().map((w) => w.ready));
  }

  /** Takes what was handed in, then stops the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running;
    const workers = this.workers ?? [];
    this.workers = [];
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private async drain(): Promise<void> {
    let next: ReturnType<ReportIntake["open"]> | undefined = this.open(this.queue.splice(0, this.maxBatch));
    while (next) {
      const { batch, opened } = await next;
      // The next batch is opened while this one is stored.
      next = this.queue.length > 0 ? this.open(this.queue.splice(0, this.maxBatch)) : undefined;
      let results: BatchedReport[];
      try {
        results = commitOpened(this.db, opened, this.now(), this.module.id, this.sessions);
      } catch (error) {
        for (const w of batch) w.reject(error as Error); // the transaction itself failed: nothing of this batch was stored
        continue;
      }
      results.forEach((r, i) => (r.ok ? batch[i].resolve(r.report) : batch[i].reject(r.error)));
      if (!next && this.queue.length > 0) next = this.open(this.queue.splice(0, this.maxBatch));
    }
  }

  private async open(batch: Waiter[]): Promise<{ batch: Waiter[]; opened: (Opened | Error)[] }> {
    // Session reports cost one AES-GCM each, opened with their session in the commit; only full
    // reports (an ECDH and a signature recovery each) go to the threads.
    const full = batch.filter((w) => !isSessionEnvelope(w.envelope));
    // The threads start the first time reports queue up (a lone report now and then never needs them).
    const online = (this.workers ?? (full.length >= SPAWN_AT ? this.pool() : [])).filter((w) => w.online);
    if (online.length === 0 || full.length === 0) return { batch, opened: batch.map((w) => openReport(w.envelope, this.module)) };
    const size = Math.ceil(full.length / online.length);
    const parts = online.map((w, i) => full.slice(i * size, (i + 1) * size)).filter((p) => p.length > 0);
    const replies = await Promise.all(
      parts.map((part, i) =>
        this.ask(
          online[i].worker,
          part.map((w) => w.envelope as Envelope),
        ).catch((error: Error) => part.map((): OpenedReply => ({ error: { name: "OtaError", code: "INTAKE_WORKER", message: error.message } }))),
      ),
    );
    const openedFull = replies.flat().map(fromReply);
    let next = 0;
    return { batch, opened: batch.map((w) => (isSessionEnvelope(w.envelope) ? { session: w.envelope } : openedFull[next++])) };
  }

  private ask(worker: Worker, envelopes: Envelope[]): Promise<OpenedReply[]> {
    const id = this.nextMessage++;
    worker.ref(); // an answer awaited keeps the process alive; an idle thread does not
    return new Promise<OpenedReply[]>((resolve, reject) => {
      this.replies.set(id, { resolve, reject, worker });
      worker.postMessage({ id, envelopes });
    }).finally(() => {
      if (![...this.replies.values()].some((r) => r.worker === worker)) worker.unref();
    });
  }

  /** The worker threads, started on first use. */
  private pool(): PoolWorker[] {
    if (this.workers) return this.workers;
    this.workers = [];
    const file = path.join(__dirname, `reportOpenWorker${path.extname(__filename)}`);
    // Under ts-node the worker must load TypeScript too.
    const execArgv = __filename.endsWith(".ts") ? ["--require", "ts-node/register/transpile-only"] : [];
    for (let i = 0; i < this.workerCount; i++) {
      const worker = new Worker(file, { execArgv, workerData: { moduleId: this.module.id, privateKey: this.module.privateKey } });
      let up = () => {};
      const entry: PoolWorker = { worker, online: false, ready: new Promise<void>((resolve) => (up = resolve)) };
      worker.unref(); // never what keeps the process alive
      worker.on("message", (m: { ready?: true; id: number; results: OpenedReply[] }) => {
        if (m.ready) {
          entry.online = true;
          return up();
        }
        const r = this.replies.get(m.id);
        this.replies.delete(m.id);
        r?.resolve(m.results);
      });
      const gone = (error: Error) => {
        // A worker that died is left out; its unanswered batches fail, the next ones go to the others (or this thread).
        this.workers = this.workers?.filter((w) => w !== entry);
        up();
        for (const [id, r] of this.replies) {
          if (r.worker !== entry.worker) continue;
          this.replies.delete(id);
          r.reject(error);
        }
      };
      entry.worker.on("error", gone);
      entry.worker.on("exit", (code) => gone(new OtaError("INTAKE_WORKER", `a report opening thread stopped (exit ${code})`)));
      this.workers.push(entry);
    }
    return this.workers;
  }
}

interface PoolWorker {
  worker: Worker;
  online: boolean; // its script is loaded: it answers
  ready: Promise<void>; // settles when online (or gone)
}

/** What a worker thread answers for one envelope (reportOpenWorker.ts). */
type OpenedReply = { opened: Extract<Opened, { signedBy: string }> } | { error: { name: string; code?: string; message: string } };

/** The worker's answer as takeSealedReport would have it: the opened report, or the same kind of error. */
function fromReply(r: OpenedReply): Opened | Error {
  if ("opened" in r) return r.opened;
  const { name, code, message } = r.error;
  if (name === "AuthenticationError") return new AuthenticationError(code ?? "MESSAGE", message);
  if (name === "InputError") return new InputError(code ?? "MESSAGE_MALFORMED", message);
  return new OtaError(code ?? "MESSAGE", message);
}

/**
 * Takes a report a module below forwarded: the device's own signature is checked, so the modules in
 * between cannot alter it (ADR 0004). The caller checks, on the ledger, that the report was sealed
 * for the forwarding module `via` or a module below it (TrackerModule.routesThrough).
 */
export function takeForwardedReport(db: FleetStore, r: SignedReport, via: string, now: number): StatusReport {
  if (!r?.message || typeof r.signature !== "string") throw new InputError("REPORT_MALFORMED", "a forwarded report is {message, signature}");
  return acceptReport(db, r.message, bySignature(recoverMessageSigner(r.message, r.signature, "device")), now, via).report;
}

/** A full report's authenticator: signed by the device's enrolled key. */
function bySignature(signedBy: string): (device: DeviceRow) => void {
  return (device) => {
    if (signedBy.toLowerCase() !== device.publicKey.toLowerCase())
      throw new ReportRefused("REPORT_SIGNATURE", `the report is not signed by device ${device.id}'s enrolled key`);
  };
}

/**
 * The checks every report passes, wherever it entered the hierarchy: it is a status report, from a
 * device the fleet database knows (from the ledger's enrolment) and is active, authenticated as
 * that device's (`authentic`: signed by its enrolled key, or sealed under a session made with
 * it), with a counter above the last one taken (no replay). The report and what the device runs
 * are stored in one transaction.
 */
function acceptReport(
  db: FleetStore,
  message: OpenedMessage<StatusReport>,
  authentic: (device: DeviceRow) => void,
  now: number,
  via: string,
): { report: StatusReport; device: DeviceRow } {
  if (message.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${message.kind} message is not a status report`);
  const device = db.devices.get(message.from) ?? introduce(db, message);
  if (!device) throw new ReportRefused("REPORT_UNKNOWN_DEVICE", `device ${message.from} is not enrolled in this fleet`);
  if (device.standing !== "active") throw new ReportRefused("REPORT_DEVICE_NOT_ACTIVE", `device ${message.from} is ${device.standing}`);
  authentic(device);
  const report = message.body;
  const checked = StatusReportSchema.safeParse(report);
  if (!checked.success) throw new InputError("REPORT_MALFORMED", `the status report's ${describeIssues(checked.error, "body")}`);
  if (report.deviceId.toLowerCase() !== message.from.toLowerCase())
    throw new InputError("REPORT_MALFORMED", `the status report's deviceId ${report.deviceId.slice(0, 66)} is not its sender ${message.from}`);
  if (!db.reports.take(message.from, report.counter, now, report, via))
    throw new ReportRefused("REPORT_REPLAYED", `report ${report.counter} of device ${message.from} is not newer than the last one taken`);
  return { report, device };
}

/**
 * A device of a Merkle batch is not in the ledger's events one by one: its first report carries its
 * record and proof, checked against the batch root the mirror holds (ledgerMirror.introduceBatchDevice).
 */
function introduce(db: FleetStore, message: OpenedMessage<StatusReport>): DeviceRow | undefined {
  const c = message.body?.credential;
  if (!c || typeof c !== "object" || !c.record || !Array.isArray(c.proof)) return undefined;
  if (String(c.record.id).toLowerCase() !== message.from.toLowerCase())
    throw new ReportRefused("REPORT_CREDENTIAL", "the credential is another device's record");
  try {
    checkDeviceRecord(c.record);
  } catch (err) {
    throw new InputError("REPORT_MALFORMED", `the report's credential: ${(err as Error).message}`);
  }
  if (!introduceBatchDevice(db, c.record, c.batchId, c.proof)) {
    throw new ReportRefused("REPORT_UNKNOWN_DEVICE", `device ${message.from}'s proof does not lead to the root of batch ${c.batchId} on the ledger`);
  }
  return db.devices.get(message.from);
}
