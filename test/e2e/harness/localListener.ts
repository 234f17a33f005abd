import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * An HTTP server on a free 127.0.0.1 port for the harness's proxies. Closing it cuts the
 * connections still open (a held or trickled answer must not keep a test waiting).
 */
export class LocalListener {
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: http.Server) {}

  static async start(handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): Promise<LocalListener> {
    const server = http.createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
    const listener = new LocalListener(server);
    server.on("connection", (s) => {
      listener.sockets.add(s);
      s.on("close", () => listener.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return listener;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A request or response body, whole. */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
}
