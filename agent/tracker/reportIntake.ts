import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { AuthenticationError, InputError, OtaError } from "../core/errors";
import { openMessage, recoverMessageSigner, type Envelope, type OpenedMessage } from "../crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import type { DeviceRow, FleetDatabase } from "./fleetDatabase";
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
 * Takes one sealed status report addressed to this tracker module (PROC-5): it must open with the
 * module's key, and pass {@link acceptReport}. Returns the report as signed, to forward upstream.
 */
export function takeSealedReport(db: FleetDatabase, envelope: Envelope, module: { id: string; privateKey: string }, now: number): SignedReport {
  const { message, signedBy, signature } = openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  acceptReport(db, message, signedBy, now, module.id);
  return { message, signature };
}

/** One report's outcome in a batch: taken (as signed, to forward) or refused with the error a single intake would throw. */
export type BatchedReport = { ok: true; report: SignedReport } | { ok: false; error: Error };

/**
 * Takes several sealed reports with one durable commit (one WAL fsync for the batch instead of one
 * per report): each report is opened and passes exactly the checks of {@link takeSealedReport},
 * and one that is refused (or fails) leaves the others and the database as they were. Reports of
 * the same device are taken in array order. Returns when the batch is committed: a caller answers
 * the devices only then, so a report acknowledged is a report stored.
 */
export function takeSealedReports(db: FleetDatabase, envelopes: readonly Envelope[], module: { id: string; privateKey: string }, now: number): BatchedReport[] {
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
 * (the opening's key exchange and signature recovery): a sealed status report addressed to this
 * module, whose seal is hex. What fails is refused as malformed or as not for this module.
 */
export function reportEnvelope(value: unknown, moduleId: string): Envelope {
  const e = value as Partial<Envelope> | null;
  if (
    !e ||
    typeof e !== "object" ||
    e.v !== 1 ||
    typeof e.kind !== "string" ||
    typeof e.from !== "string" ||
    typeof e.to !== "string" ||
    typeof e.sealed !== "string" ||
    !/^0x(?:[0-9a-fA-F]{2})+$/.test(e.sealed)
  ) {
    throw new InputError("MESSAGE_MALFORMED", `a report is a sealed envelope {v: 1, kind: "${REPORT_KIND}", from, to, sealed: "0x<hex>"}`);
  }
  if (e.to.toLowerCase() !== moduleId.toLowerCase()) throw new AuthenticationError("MESSAGE_NOT_FOR_ME", `the report is for ${e.to}, not ${moduleId}`);
  if (e.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${e.kind.slice(0, 40)} message is not a status report`);
  return e as Envelope;
}

type Opened = { message: OpenedMessage<StatusReport>; signedBy: string; signature: string };

function openReport(envelope: Envelope, module: { id: string; privateKey: string }): Opened | Error {
  try {
    return openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  } catch (error) {
    return error as Error;
  }
}

/** Checks and stores opened reports in one transaction, each in its own savepoint. */
function commitOpened(db: FleetDatabase, opened: readonly (Opened | Error)[], now: number, via: string): BatchedReport[] {
  if (opened.length === 0) return [];
  return db.transaction(() =>
    opened.map((o): BatchedReport => {
      if (o instanceof Error) return { ok: false, error: o };
      try {
        // A refusal or failure undoes only this report's writes.
        db.transaction(() => acceptReport(db, o.message, o.signedBy, now, via));
        return { ok: true, report: { message: o.message, signature: o.signature } };
      } catch (error) {
        return { ok: false, error: error as Error };
      }
    }),
  );
}

export interface ReportIntakeOptions {
  /** Threads that open reports and recover their signers (default: one per core; 0: the calling thread). */
  workers?: number;
  /** Most reports per transaction (default 256). */
  maxBatch?: number;
}

/** Reports waiting at once that make the intake start its worker threads. */
const SPAWN_AT = 8;

interface Waiter {
  envelope: Envelope;
  resolve: (r: SignedReport) => void;
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

  constructor(
    private readonly db: FleetDatabase,
    private readonly module: { id: string; privateKey: string },
    private readonly now: () => number = Date.now,
    options: ReportIntakeOptions = {},
  ) {
    this.workerCount = Math.max(0, Math.floor(options.workers ?? os.availableParallelism?.() ?? os.cpus().length));
    this.maxBatch = Math.max(1, options.maxBatch ?? 256);
  }

  /** Takes one sealed report; settles when it is stored (or refused). */
  take(envelope: Envelope): Promise<SignedReport> {
    if (this.closed) return Promise.reject(new OtaError("INTAKE_CLOSED", "the tracker is stopping: report not taken"));
    return new Promise<SignedReport>((resolve, reject) => {
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
        results = commitOpened(this.db, opened, this.now(), this.module.id);
      } catch (error) {
        for (const w of batch) w.reject(error as Error); // the transaction itself failed: nothing of this batch was stored
        continue;
      }
      results.forEach((r, i) => (r.ok ? batch[i].resolve(r.report) : batch[i].reject(r.error)));
      if (!next && this.queue.length > 0) next = this.open(this.queue.splice(0, this.maxBatch));
    }
  }

  private async open(batch: Waiter[]): Promise<{ batch: Waiter[]; opened: (Opened | Error)[] }> {
    // The threads start the first time reports queue up (a lone report now and then never needs them).
    const online = (this.workers ?? (batch.length >= SPAWN_AT ? this.pool() : [])).filter((w) => w.online);
    if (online.length === 0) return { batch, opened: batch.map((w) => openReport(w.envelope, this.module)) };
    const size = Math.ceil(batch.length / online.length);
    const parts = online.map((w, i) => batch.slice(i * size, (i + 1) * size)).filter((p) => p.length > 0);
    const replies = await Promise.all(
      parts.map((part, i) =>
        this.ask(
          online[i].worker,
          part.map((w) => w.envelope),
        ).catch((error: Error) => part.map((): OpenedReply => ({ error: { name: "OtaError", code: "INTAKE_WORKER", message: error.message } }))),
      ),
    );
    return { batch, opened: replies.flat().map(fromReply) };
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
type OpenedReply = { opened: Opened } | { error: { name: string; code?: string; message: string } };

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
export function takeForwardedReport(db: FleetDatabase, r: SignedReport, via: string, now: number): StatusReport {
  if (!r?.message || typeof r.signature !== "string") throw new InputError("REPORT_MALFORMED", "a forwarded report is {message, signature}");
  return acceptReport(db, r.message, recoverMessageSigner(r.message, r.signature, "device"), now, via);
}

/**
 * The checks every report passes, wherever it entered the hierarchy: it is a status report, from a
 * device the fleet database knows (from the ledger's enrolment) and is active, signed by that
 * device's enrolled key, with a counter above the last one taken (no replay). The report and what
 * the device runs are stored in one transaction.
 */
function acceptReport(db: FleetDatabase, message: OpenedMessage<StatusReport>, signedBy: string, now: number, via: string): StatusReport {
  if (message.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${message.kind} message is not a status report`);
  const device = db.device(message.from) ?? introduce(db, message);
  if (!device) throw new ReportRefused("REPORT_UNKNOWN_DEVICE", `device ${message.from} is not enrolled in this fleet`);
  if (device.standing !== "active") throw new ReportRefused("REPORT_DEVICE_NOT_ACTIVE", `device ${message.from} is ${device.standing}`);
  if (signedBy.toLowerCase() !== device.publicKey.toLowerCase())
    throw new ReportRefused("REPORT_SIGNATURE", `the report is not signed by device ${message.from}'s enrolled key`);
  const report = message.body;
  if (!isReport(report, message.from))
    throw new InputError("REPORT_MALFORMED", "a status report names its device, a counter and the installed components (and safeMode, if given, is a boolean)");
  if (!db.takeReport(message.from, report.counter, now, report, via))
    throw new ReportRefused("REPORT_REPLAYED", `report ${report.counter} of device ${message.from} is not newer than the last one taken`);
  return report;
}

/**
 * A device of a Merkle batch is not in the ledger's events one by one: its first report carries its
 * record and proof, checked against the batch root the mirror holds (ledgerMirror.introduceBatchDevice).
 */
function introduce(db: FleetDatabase, message: OpenedMessage<StatusReport>): DeviceRow | undefined {
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
  return db.device(message.from);
}

function isReport(r: StatusReport, from: string): boolean {
  const hex32 = (x: unknown) => typeof x === "string" && /^0x[0-9a-fA-F]{64}$/.test(x);
  return (
    !!r &&
    typeof r.deviceId === "string" &&
    r.deviceId.toLowerCase() === from.toLowerCase() &&
    Number.isSafeInteger(r.counter) &&
    r.counter > 0 &&
    Array.isArray(r.installed) &&
    r.installed.every((i) => hex32(i?.component) && hex32(i?.releaseId) && typeof i.version === "string" && /^\d{1,20}$/.test(i.version)) &&
    (r.lastResult === null ||
      (typeof r.lastResult === "object" &&
        typeof r.lastResult.outcome === "string" &&
        typeof r.lastResult.code === "string" &&
        (r.lastResult.releaseId === undefined || r.lastResult.releaseId === "" || hex32(r.lastResult.releaseId)))) &&
    (r.declined === undefined || (Array.isArray(r.declined) && r.declined.every((d) => hex32(d?.releaseId)))) &&
    // Safe mode (CAP-11.1-b) is a status the tracker lists: a boolean, or absent (not in safe mode).
    (r.safeMode === undefined || typeof r.safeMode === "boolean")
  );
}
