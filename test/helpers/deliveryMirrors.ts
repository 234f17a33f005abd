import http from "node:http";
import { LocalListener, readAll } from "../e2e/harness/localListener";
import { startFirmwareServer, type RunningFirmwareServer } from "../../agent/server/firmwareServer";
import type { ContentStore } from "../../agent/storage/contentStore";
import type { serverFixture } from "./serverFixture";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/** What a mirror does to what it relays. */
export type MirrorFault =
  | { kind: "none" }
  | { kind: "flip"; offset: number } // one byte of the artifact flipped (offsets from the artifact's start)
  | { kind: "status"; status: number; body: string; contentType?: string } // every answer replaced (a proxy's 503 page, ...)
  | { kind: "key"; answer: string } // the wrapped-key answer replaced (another device's key)
  | { kind: "trickle"; pieceBytes: number; delayMs: number } // the artifact sent slowly, never silent for long (a slow-retrieval mirror)
  | { kind: "no-ranges" }; // Range headers dropped, as a proxy that does not do ranges (RFC 9110 14.2 lets it): the whole artifact, 200

/**
 * A mirror of the fixture's firmware server: a second, real firmware server over the same store
 * and database, behind a small HTTP proxy on 127.0.0.1 that is its public origin (as an operator
 * runs one), and that may flip a byte of an artifact or answer every request with a status of
 * its own (a proxy in trouble).
 */
export class FirmwareMirror {
  fault: MirrorFault = { kind: "none" };
  /** Requests seen: method, path, range. */
  readonly log: { path: string; range?: string; status: number }[] = [];
  private server!: RunningFirmwareServer;
  private constructor(private readonly listener: LocalListener) {}

  /** `clockOffsetMs`: the mirror's clock runs this far from the test machine's (its auth window and its Date header both). */
  static async start(f: Fixture, fault: MirrorFault = { kind: "none" }, o: { clockOffsetMs?: number } = {}): Promise<FirmwareMirror> {
    const at: { mirror?: FirmwareMirror } = {};
    const listener = await LocalListener.start((req, res) => at.mirror!.handle(req, res));
    const mirror = (at.mirror = new FirmwareMirror(listener));
    mirror.fault = fault;
    mirror.clockOffsetMs = o.clockOffsetMs ?? 0;
    const now = () => Date.now() + mirror.clockOffsetMs;
    mirror.server = await startFirmwareServer({ gate: f.gate, store: f.store, db: f.db, pollMs: 100, publicOrigin: listener.url, now });
    return mirror;
  }

  private clockOffsetMs = 0;

  /** The Date header of the mirror's clock (Node writes the machine's own otherwise). */
  private dated(headers: http.OutgoingHttpHeaders): http.OutgoingHttpHeaders {
    return this.clockOffsetMs === 0 ? headers : { ...headers, date: new Date(Date.now() + this.clockOffsetMs).toUTCString() };
  }

  get url(): string {
    return this.listener.url;
  }

  async close(): Promise<void> {
    await this.listener.close();
    await this.server.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = req.url ?? "/";
    const entry = { path, range: req.headers.range, status: 0 };
    this.log.push(entry);
    const fault = this.fault;
    if (fault.kind === "status") {
      entry.status = fault.status;
      res.writeHead(fault.status, { "content-type": fault.contentType ?? "text/html" });
      res.end(fault.body);
      return;
    }
    const upstream = new URL(this.server.url);
    const headers = { ...req.headers };
    delete headers.host;
    if (fault.kind === "no-ranges") delete headers.range;
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers }, resolve);
      r.on("error", reject);
      r.end();
    });
    entry.status = answer.statusCode ?? 0;
    if (fault.kind === "key" && /\/key$/.test(path.split("?")[0]) && answer.statusCode === 200) {
      answer.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(fault.answer);
      return;
    }
    const isArtifact = /\/artifact$/.test(path.split("?")[0]) && (answer.statusCode === 200 || answer.statusCode === 206);
    if (isArtifact && fault.kind === "trickle") {
      const body = Buffer.from(await readAll(answer));
      const out = { ...answer.headers };
      delete out["content-length"];
      res.writeHead(answer.statusCode!, out);
      for (let at = 0; at < body.length && !res.destroyed; at += fault.pieceBytes) {
        res.write(body.subarray(at, at + fault.pieceBytes));
        await new Promise((r) => setTimeout(r, fault.delayMs));
      }
      res.end();
      return;
    }
    if (!isArtifact || fault.kind !== "flip") {
      res.writeHead(answer.statusCode ?? 502, this.dated(answer.headers));
      answer.pipe(res);
      return;
    }
    const start = Number(/^bytes (\d+)-/.exec(String(answer.headers["content-range"] ?? ""))?.[1] ?? 0);
    const body = Buffer.from(await readAll(answer));
    if (fault.offset >= start && fault.offset < start + body.length) body[fault.offset - start] ^= 0x01;
    const out = { ...answer.headers };
    delete out["content-length"];
    res.writeHead(answer.statusCode!, out);
    res.end(body);
  }
}

/**
 * An IPFS trustless gateway (https://specs.ipfs.tech/http-gateways/trustless-gateway/) over a real
 * block store: GET /ipfs/<cid>?format=raw (or Accept: application/vnd.ipld.raw) answers the block
 * as stored. It may flip a byte of one block, stop serving after some blocks (503), or answer as a
 * plain gateway does (the file's bytes, not a block).
 */
export class TrustlessGateway {
  readonly served: string[] = [];
  flipBlock: string | undefined;
  /** Blocks served before every further request is answered 503 (a gateway under load). */
  serveBlocks = Infinity;
  plain = false;
  private constructor(
    private readonly listener: LocalListener,
    private readonly store: Pick<ContentStore, "getBlock">,
  ) {}

  static async start(store: Pick<ContentStore, "getBlock">): Promise<TrustlessGateway> {
    const at: { gateway?: TrustlessGateway } = {};
    const listener = await LocalListener.start((req, res) => at.gateway!.handle(req, res));
    return (at.gateway = new TrustlessGateway(listener, store));
  }

  get url(): string {
    return this.listener.url;
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    const m = /^\/ipfs\/([a-z2-7]+)$/.exec(url.pathname);
    const raw = url.searchParams.get("format") === "raw" || (req.headers.accept ?? "").includes("application/vnd.ipld.raw");
    if (!m || !raw) {
      res.writeHead(m ? 406 : 404, { "content-type": "text/plain" }).end("not here");
      return;
    }
    if (this.served.length >= this.serveBlocks) {
      res.writeHead(503, { "content-type": "text/plain" }).end("Service Unavailable");
      return;
    }
    let block: Buffer;
    try {
      block = Buffer.from(await this.store.getBlock(m[1]));
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("block not found");
      return;
    }
    this.served.push(m[1]);
    if (this.flipBlock === m[1]) block[Math.floor(block.length / 2)] ^= 0x01;
    res.writeHead(200, { "content-type": this.plain ? "application/octet-stream" : "application/vnd.ipld.raw", "content-length": block.length });
    res.end(block);
  }
}

/** A plain HTTP server on 127.0.0.1 answering every request with `answer` (a refusing or lying server). */
export async function answeringServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>): Promise<LocalListener> {
  return LocalListener.start(async (req, res) => answer(req, res));
}
