import http from "node:http";
import { LocalListener, readAll } from "./localListener";
import type { Envelope } from "../../../agent/crypto/sealedMessage";

/** One status report the proxy relayed: the sealed envelope as the device posted it, and the tracker's answer. */
export interface RelayedReport {
  envelope: Envelope;
  status: number;
  answer: { accepted?: boolean; counter?: number; notices?: Envelope[] } | undefined;
  at: number;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a tracker module, playing the network between it and the
 * devices (client-module mode, DEP-8.2.2): it relays every request, keeps each sealed status
 * report a device posts (what an eavesdropper captures) and the tracker's answer, and may add
 * update notices to the next answers to `/v1/reports` (what a forger or a replayer sends).
 */
export class TrackerProxy {
  readonly reports: RelayedReport[] = [];
  /** Notices added to the next report answer with status 200, then forgotten. */
  private readonly toInject: Envelope[] = [];
  private readonly injected: (() => void)[] = [];
  private listener!: LocalListener;

  private constructor(private readonly upstream: URL) {}

  static async start(upstreamUrl: string): Promise<TrackerProxy> {
    const proxy = new TrackerProxy(new URL(upstreamUrl));
    proxy.listener = await LocalListener.start((req, res) => proxy.handle(req, res));
    return proxy;
  }

  get url(): string {
    return this.listener.url;
  }

  /** Adds `notices` to the next accepted report's answer; resolves once the device received them. */
  inject(...notices: Envelope[]): Promise<void> {
    this.toInject.push(...notices);
    return new Promise((resolve) => this.injected.push(resolve));
  }

  async close(): Promise<void> {
    await this.listener.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readAll(req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && k !== "host" && k !== "connection" && k !== "content-length") headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const upstream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = http.request(
        {
          host: this.upstream.hostname,
          port: this.upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...headers, "content-length": String(body.length) },
        },
        resolve,
      );
      r.on("error", reject);
      r.end(body.length > 0 ? body : undefined);
    }).catch(() => undefined);
    if (!upstream) {
      res.destroy(); // no tracker there: the device sees the connection fail
      return;
    }
    let answer = await readAll(upstream);
    if (req.method === "POST" && req.url === "/v1/reports") {
      let parsed: RelayedReport["answer"];
      try {
        parsed = JSON.parse(answer.toString("utf8"));
      } catch {
        parsed = undefined;
      }
      this.reports.push({ envelope: JSON.parse(body.toString("utf8")) as Envelope, status: upstream.statusCode ?? 0, answer: parsed, at: Date.now() });
      if (upstream.statusCode === 200 && parsed && this.toInject.length > 0) {
        parsed.notices = [...(parsed.notices ?? []), ...this.toInject.splice(0)];
        answer = Buffer.from(JSON.stringify(parsed));
        const done = this.injected.splice(0);
        res.once("finish", () => done.forEach((d) => d()));
      }
    }
    const out = { ...upstream.headers, "content-length": String(answer.length) };
    delete out["transfer-encoding"];
    res.writeHead(upstream.statusCode ?? 502, out);
    res.end(answer);
  }
}
