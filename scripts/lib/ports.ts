import { readFileSync } from "node:fs";
import net from "node:net";

/**
 * A TCP port on 127.0.0.1 that nothing listens on (at the time of asking), for a server started
 * later. It is drawn below the kernel's ephemeral range: a port the kernel hands out for
 * listen(0) is also what it hands out as the source port of outgoing connections, so one picked
 * there can be taken by a client (an RPC call, a fetch) before the server binds it (seen once in
 * CI: EADDRINUSE on 127.0.0.1:39163, a port of the 32768-60999 range).
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const floor = 10_000;
  const span = Math.max(1, low - floor);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * span);
    if (await canListen(port)) return port;
  }
  return kernelPort(); // the range below is crowded: fall back to what the kernel gives
}

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low > 1024 && high >= low) return [low, high];
  } catch {
    // not Linux: IANA's dynamic range
  }
  return [49152, 65535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}
