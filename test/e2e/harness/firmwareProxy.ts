import http from "node:http";
import { LocalListener, readAll } from "./localListener";
import { randomBytes } from "node:crypto";
import { HEADER, signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { decodeDeviceCredential } from "../../../agent/crypto/deviceCredential";

/** What the proxy does to the bytes of an artifact it relays (offsets count from the artifact's start). */
export type ArtifactFault =
  | { kind: "none" }
  | { kind: "alter"; offset: number } // one byte flipped
  | { kind: "truncate"; at: number } // the copy ends there: nothing at or after `at` is ever sent
  | { kind: "extend"; bytes: number } // extra bytes after the artifact
  | { kind: "swap"; a: number; b: number; size: number } // two equal-sized regions (stored chunks) swapped
  | { kind: "endless" } // after the artifact, bytes without end
  | { kind: "trickle"; pieceBytes: number; delayMs: number } // slowly, but never silent for long
  | { kind: "cut"; afterBytes: number } // the connection breaks after this many bytes of the artifact
  | { kind: "replace"; bytes: Buffer }; // another artifact's bytes instead (mix-and-match)

export interface ProxyLogEntry {
  method: string;
  path: string;
  range: string | undefined;
  status: number;
  at: number;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of the firmware server process, playing the network (or
 * a compromised server) between it and the devices: it relays every request and may alter,
 * truncate, extend, swap, replace or trickle an artifact's bytes, send bytes without end, cut the
 * connection, hand out another release's manifest or key, or hold an answer until released.
 *
 * Devices sign each request for the server's origin (docs/server.md: a captured request cannot be
 * replayed to another server). A proxy an operator runs would set the server's `server.publicUrl`
 * to its own origin; this one stands for a hostile mirror the server knows nothing of, so it
 * re-signs each device request for the real server's origin with that device's key (the harness
 * made the keys): the server sees the device's own request, the device sees the server's answer
 * as the proxy passes it on.
 */
export class FirmwareProxy {
  readonly log: ProxyLogEntry[] = [];
  /** Faults by release id (lowercase); `"*"` for every release. */
  readonly faults = new Map<string, ArtifactFault>();
  /** Answers handed out instead of the server's, by release id: another release's manifest or key (mix-and-match). */
  readonly manifestOverride = new Map<string, string>();
  readonly keyOverride = new Map<string, string>();
  /** The last manifest and key answers the server gave, by release id (what an eavesdropper keeps). */
  readonly captured = { manifest: new Map<string, string>(), key: new Map<string, string>() };
  /** While set, every request is answered with this status and an HTML page, as an overloaded proxy or load balancer does (nothing is relayed). */
  refusing: number | undefined;
  private readonly remaining = new Map<string, number>();
  private readonly holds: Hold[] = [];
  private readonly deviceKeys = new Map<string, string>();
  private listener!: LocalListener;
  private constructor(private readonly upstream: URL) {}

  static async start(upstreamUrl: string): Promise<FirmwareProxy> {
    const proxy = new FirmwareProxy(new URL(upstreamUrl));
    proxy.listener = await LocalListener.start((req, res) => proxy.handle(req, res));
    return proxy;
  }

  get url(): string {
    return this.listener.url;
  }

  /** Lets the proxy re-sign this device's requests (see the class comment). */
  addDevice(deviceId: string, privateKey: string): void {
    this.deviceKeys.set(deviceId.toLowerCase(), privateKey);
  }

  /** Applies `fault` to the artifact of `releaseId` (or "*": any), for `times` answers (default: until cleared). */
  setFault(releaseId: string | "*", fault: ArtifactFault, times = Infinity): void {
    this.faults.set(releaseId.toLowerCase(), fault);
    this.remaining.set(releaseId.toLowerCase(), times);
  }

  private takeFault(releaseId: string): ArtifactFault | undefined {
    for (const k of [releaseId, "*"]) {
      const fault = this.faults.get(k);
      if (!fault) continue;
      const left = (this.remaining.get(k) ?? Infinity) - 1;
      if (left <= 0) this.faults.delete(k);
      else this.remaining.set(k, left);
      return fault;
    }
    return undefined;
  }

  clearFaults(): void {
    this.faults.clear();
    this.manifestOverride.clear();
    this.keyOverride.clear();
  }

  /**
   * Holds the server's answer to the next request whose path matches, after the server answered:
   * `reached` resolves when such an answer is held, `release()` passes it on.
   */
  hold(path: RegExp): { reached: Promise<void>; release(): void } {
    let reached!: () => void;
    const h: Hold = { path, reached: new Promise<void>((r) => (reached = r)), onReached: () => reached(), released: false, waiters: [] };
    this.holds.push(h);
    return {
      reached: h.reached,
      release: () => {
        h.released = true;
        this.holds.splice(this.holds.indexOf(h), 1);
        for (const w of h.waiters.splice(0)) w();
      },
    };
  }

  /** Requests for this path (exact, or matching) logged so far. */
  requests(path: RegExp): ProxyLogEntry[] {
    return this.log.filter((e) => path.test(e.path));
  }

  async close(): Promise<void> {
    for (const h of [...this.holds]) for (const w of h.waiters.splice(0)) w();
    this.holds.length = 0;
    await this.listener.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readAll(req);
    const path = req.url ?? "/";
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && k !== "host" && k !== "connection") headers[k] = Array.isArray(v) ? v.join(", ") : v;
    this.resign(req.method ?? "GET", path, headers, body);
    const entry: ProxyLogEntry = { method: req.method ?? "GET", path, range: req.headers.range, status: 0, at: Date.now() };
    this.log.push(entry);
    if (this.refusing !== undefined) {
      entry.status = this.refusing;
      res.writeHead(this.refusing, { "content-type": "text/html" });
      res.end(`<html><body><h1>${this.refusing} Service Unavailable</h1></body></html>`);
      return;
    }
    const upstream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = http.request({ host: this.upstream.hostname, port: this.upstream.port, method: req.method, path, headers }, resolve);
      r.on("error", reject);
      r.end(body.length > 0 ? body : undefined);
    }).catch(() => undefined);
    if (!upstream) {
      entry.status = 502;
      res.destroy(); // the server is not there: the device sees the connection fail
      return;
    }
    entry.status = upstream.statusCode ?? 0;
    res.on("close", () => upstream.destroy());
    const m = /^\/v1\/releases\/(0x[0-9a-fA-F]{64})\/(artifact|manifest|key)(\?.*)?$/.exec(path);
    const releaseId = m?.[1].toLowerCase();
    const what = m?.[2];

    if (releaseId && (what === "manifest" || what === "key") && upstream.statusCode === 200) {
      const text = (await readAll(upstream)).toString("utf8");
      const store = what === "manifest" ? this.captured.manifest : this.captured.key;
      store.set(releaseId, text);
      const override = (what === "manifest" ? this.manifestOverride : this.keyOverride).get(releaseId);
      await this.waitIfHeld(path);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(override ?? text);
      return;
    }
    const fault =
      releaseId && what === "artifact" && req.method === "GET" && (upstream.statusCode === 200 || upstream.statusCode === 206)
        ? this.takeFault(releaseId)
        : undefined;
    if (!fault || fault.kind === "none") {
      await this.waitIfHeld(path);
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
      return;
    }
    await this.waitIfHeld(path);
    const start = startOf(upstream);
    const out = { ...upstream.headers };
    delete out["content-length"];
    delete out["content-range"];
    res.writeHead(upstream.statusCode!, out);
    await relayWithFault(fault, start, upstream, res);
  }

  private resign(method: string, path: string, headers: Record<string, string>, body: Buffer): void {
    const credential = headers[HEADER.device];
    if (!credential) return;
    let id: string;
    try {
      id = decodeDeviceCredential(credential).record.id.toLowerCase();
    } catch {
      return;
    }
    const key = this.deviceKeys.get(id);
    if (!key) return;
    const signed = signDeviceRequest(key, id, credential, {
      audience: this.upstream.origin,
      method,
      path,
      body: body.length > 0 ? body : undefined,
      context: headers[HEADER.context],
    });
    Object.assign(headers, signed);
  }

  private async waitIfHeld(path: string): Promise<void> {
    const h = this.holds.find((x) => !x.released && x.path.test(path));
    if (!h) return;
    await new Promise<void>((resolve) => {
      h.waiters.push(resolve);
      h.onReached();
    });
  }
}

interface Hold {
  path: RegExp;
  reached: Promise<void>;
  onReached(): void;
  released: boolean;
  waiters: (() => void)[];
}

/** Where the upstream's body starts in the artifact: 0, or the start of its Content-Range. */
function startOf(res: http.IncomingMessage): number {
  const range = /^bytes (\d+)-/.exec(String(res.headers["content-range"] ?? ""));
  return range ? Number(range[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes, honouring backpressure; false once the device hung up. */
async function send(res: http.ServerResponse, piece: Buffer): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false;
  if (!res.write(piece)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }
  return !res.destroyed;
}

async function relayWithFault(
  fault: Exclude<ArtifactFault, { kind: "none" }>,
  start: number,
  upstream: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (fault.kind === "swap" || fault.kind === "replace") {
    let whole = await readAll(upstream);
    if (fault.kind === "replace") whole = fault.bytes.subarray(start);
    else if (start === 0) {
      whole = Buffer.from(whole);
      const a = Buffer.from(whole.subarray(fault.a, fault.a + fault.size));
      whole.copy(whole, fault.a, fault.b, fault.b + fault.size);
      a.copy(whole, fault.b);
    }
    await send(res, whole);
    res.end();
    return;
  }
  let at = start;
  for await (const chunk of upstream as AsyncIterable<Buffer>) {
    let piece: Buffer = chunk;
    if (fault.kind === "alter" && fault.offset >= at && fault.offset < at + piece.length) {
      piece = Buffer.from(piece);
      piece[fault.offset - at] ^= 0x01;
    }
    if (fault.kind === "truncate") piece = piece.subarray(0, Math.max(0, fault.at - at));
    if (fault.kind === "cut" && at + piece.length > fault.afterBytes) {
      await send(res, piece.subarray(0, Math.max(0, fault.afterBytes - at)));
      await sleep(300); // what was sent reaches the device before the connection breaks
      res.destroy(); // the connection breaks mid-body
      return;
    }
    if (fault.kind === "trickle") {
      for (let i = 0; i < piece.length; i += fault.pieceBytes) {
        if (!(await send(res, piece.subarray(i, i + fault.pieceBytes)))) return;
        await sleep(fault.delayMs);
      }
    } else if (!(await send(res, piece))) return;
    at += chunk.length;
  }
  if (fault.kind === "extend") await send(res, randomBytes(fault.bytes));
  if (fault.kind === "endless") {
    // Bytes for as long as the device reads them.
    while (await send(res, randomBytes(64 * 1024))) await sleep(1);
    return;
  }
  res.end();
}
