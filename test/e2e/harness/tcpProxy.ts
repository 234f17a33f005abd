import net from "node:net";

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  toUpstream: Buffer[];
  toClient: Buffer[];
}

/**
 * A TCP proxy on 127.0.0.1 in front of one upstream port, for faults of a link as a whole:
 *  - `cut()`: stops listening and drops every open connection, so callers get ECONNREFUSED,
 *    exactly what they get from a node that was stopped; `restore()` listens again on the same
 *    port (the node "restarted", its state intact);
 *  - `hold()`: stops moving bytes (open connections stall, new ones wait), as a node that hangs;
 *    `release()` lets them through.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private held = false;
  private readonly waiting: (() => void)[] = [];
  port = 0;

  private constructor(private readonly upstream: { host: string; port: number }) {}

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy({ host: "127.0.0.1", port: upstreamPort });
    await proxy.listen(0);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.server === undefined;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        this.server = server;
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    const pair: Pair = { client, upstream: undefined, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    client.on("error", () => {});
    client.on("close", () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    // Bytes are forwarded by hand (not piped), so that a hold keeps them queued, in order.
    client.on("data", (d: Buffer) => (this.held || !pair.upstream ? pair.toUpstream.push(d) : pair.upstream.write(d)));
    const connect = () => {
      if (client.destroyed) return;
      const upstream = net.connect(this.upstream);
      pair.upstream = upstream;
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => client.destroy());
      upstream.on("data", (d: Buffer) => (this.held ? pair.toClient.push(d) : client.write(d)));
      upstream.once("connect", () => this.flush(pair));
    };
    if (this.held) this.waiting.push(connect);
    else connect();
  }

  private flush(pair: Pair): void {
    if (this.held) return;
    if (pair.upstream && !pair.upstream.connecting) for (const d of pair.toUpstream.splice(0)) pair.upstream.write(d);
    for (const d of pair.toClient.splice(0)) pair.client.write(d);
  }

  /** The upstream is gone: no listener, every connection dropped. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
    this.waiting.length = 0;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listening again on the same port. */
  async restore(): Promise<void> {
    if (this.server) return;
    await this.listen(this.port);
  }

  /** Bytes stop moving in both directions (they are queued); new connections wait. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const p of this.pairs) this.flush(p);
    for (const connect of this.waiting.splice(0)) connect();
  }

  async close(): Promise<void> {
    this.release();
    await this.cut();
  }
}
