import net from "node:net";
import tls from "node:tls";
import type { IClientOptions, MqttClient } from "mqtt";

/**
 * An MQTT client (mqtt.js) on a TCP or TLS socket of our own (ADR 0015), for the device's report
 * transport and the tracker's intake:
 *
 * - the socket has Nagle's algorithm off: mqtt.js writes a packet's header and payload apart, and
 *   with Nagle on each report waited for the peer's delayed ACK (a round trip of 44 ms on
 *   127.0.0.1 instead of under 2);
 * - only the client is loaded (`mqtt/lib/client`), not mqtt.js's connect() with its WebSocket,
 *   SOCKS and browser code: 137 KB less in the device bundle (ADR 0007).
 *
 * `url`: mqtt://host[:1883] or mqtts://host[:8883] (TLS, the system's CAs, the host name checked).
 */
export function mqttClient(url: string, options: IClientOptions): MqttClient {
  const { host, port, secure } = brokerEndpoint(url);
  const streamBuilder = () => {
    const socket = secure ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
    socket.setNoDelay(true);
    return socket;
  };
  // The client alone: the package's entry would bring its WebSocket and SOCKS transports into the device bundle.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { default: Client } = require("mqtt/lib/client") as { default: new (builder: () => net.Socket, o: IClientOptions) => MqttClient };
  return new Client(streamBuilder, { ...options, protocol: secure ? "mqtts" : "mqtt", host, port });
}

/** Waits for the client's first connection; rejects with the broker's refusal or the socket's error, or after `timeoutMs`. */
export function firstConnection(client: MqttClient, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => settle(Object.assign(new Error(`no CONNACK within ${timeoutMs} ms`), { code: "ETIMEDOUT" })), timeoutMs);
    const onConnect = () => settle();
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(Object.assign(new Error("the connection closed before the broker answered"), { code: "ECONNRESET" }));
    const settle = (err?: Error) => {
      clearTimeout(timer);
      client.off("connect", onConnect);
      client.off("error", onError);
      client.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    client.on("connect", onConnect);
    client.on("error", onError);
    client.on("close", onClose);
  });
}

/** A broker URL's host, port and whether it is TLS: mqtt://host[:1883] or mqtts://host[:8883]. */
export function brokerEndpoint(url: string): { host: string; port: number; secure: boolean } {
  const u = new URL(url);
  const secure = u.protocol === "mqtts:";
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : secure ? 8883 : 1883, secure };
}
