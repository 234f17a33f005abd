import type { MqttClient } from "mqtt";
import { firstConnection, mqttClient } from "../net/mqttConnection";
import { reportTag, type ReportTopicAnswer } from "../core/reportTopics";
import { REPORT_ANSWER_MAX_BYTES } from "../core/wireLimits";
import type { Envelope } from "../crypto/sealedMessage";
import type { SessionEnvelope } from "../crypto/reportSession";
import { ReportDeliveryError, type ReportAnswer, type ReportTransport } from "./reportTransport";

/** An answer on the notices topic is read up to this: the HTTP answer's bound and room for the tag. */
const ANSWER_MAX_BYTES = REPORT_ANSWER_MAX_BYTES + 1024;
/** MQTT 5 CONNACK / SUBACK / PUBACK reason codes that mean "these credentials may not": bad user or password, not authorised. */
const REFUSED_CODES = new Set([4, 5, 0x86, 0x87]);

export interface MqttReportTransportOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
  /** The device's own topics (agent/core/reportTopics.ts). */
  reportTopic: string;
  noticeTopic: string;
  /** Connecting, publishing and the answer together, at most (ms). */
  timeoutMs: number;
  log?: (line: string) => void;
}

/**
 * A device's reports over MQTT (ADR 0015): it publishes each sealed report on its reports topic
 * (QoS 1, not retained) and waits for the answer its module publishes on its notices topic, tied
 * to the report by its tag (agent/core/reportTopics.ts reportTag). One connection, made when the
 * first report goes and again after the broker closed it; nothing is queued while it is down (a
 * report that cannot go fails TRACKER_UNREACHABLE and the next heartbeat sends a new one).
 *
 * The broker is not trusted: an answer it drops is a report without answer (TRACKER_UNREACHABLE),
 * one it duplicates or reorders meets no report waiting for it and is ignored, and notices it
 * forges, replays or takes from another device are refused by the device's notice checks
 * (sealed to this device, signed by its registered upstream, fresh, newer than the last).
 */
export class MqttReportTransport implements ReportTransport {
  readonly kind = "mqtt";
  private client: MqttClient | undefined;
  private connecting: Promise<MqttClient> | undefined;
  private readonly waiting = new Map<string, { resolve: (a: ReportTopicAnswer) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly o: MqttReportTransportOptions) {}

  get target(): string {
    return this.o.url;
  }

  async exchange(envelope: Envelope | SessionEnvelope): Promise<ReportAnswer> {
    const re = reportTag(envelope);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ReportDeliveryError(
              "TRACKER_UNREACHABLE",
              `no answer from the tracker over MQTT at ${this.o.url} within ${this.o.timeoutMs} ms; the report is kept and sent again`,
            ),
          ),
        this.o.timeoutMs,
      );
    });
    const answer = new Promise<ReportTopicAnswer>((resolve, reject) => this.waiting.set(re, { resolve, reject }));
    answer.catch(() => {}); // the deadline may win; this one is then settled by finally below
    try {
      const client = await Promise.race([this.connected(), deadline]);
      await Promise.race([
        client.publishAsync(this.o.reportTopic, JSON.stringify(envelope), { qos: 1, retain: false }).catch((cause: Error & { code?: number }) => {
          throw REFUSED_CODES.has(cause.code ?? -1)
            ? new ReportDeliveryError(
                "BROKER_REFUSED",
                `the broker at ${this.o.url} does not let ${this.o.username} publish on ${this.o.reportTopic}: regenerate its ACL (ota-ledger tracker mqtt-config)`,
                { cause },
              )
            : new ReportDeliveryError("TRACKER_UNREACHABLE", `the report could not be published at ${this.o.url}; it is kept and sent again`, { cause });
        }),
        deadline,
      ]);
      const a = await Promise.race([answer, deadline]);
      if ("error" in a) {
        const error = new ReportDeliveryError("TRACKER_REFUSED", `the tracker refused the report over MQTT: ${a.error.code} ${a.error.message}`);
        error.refusal = a.error.code;
        throw error;
      }
      return { body: a };
    } finally {
      clearTimeout(timer);
      this.waiting.delete(re);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.endAsync(true).catch(() => {});
  }

  private connected(): Promise<MqttClient> {
    if (this.closed) return Promise.reject(new ReportDeliveryError("TRACKER_UNREACHABLE", "the MQTT transport is closed"));
    if (this.client?.connected) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<MqttClient> {
    const o = this.o;
    const client = mqttClient(o.url, {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 0, // reconnected by the next report, not in the background
      connectTimeout: o.timeoutMs,
      keepalive: 60,
      // The broker does not send this device a packet larger than an answer can be.
      properties: { maximumPacketSize: ANSWER_MAX_BYTES + 1024 },
    });
    try {
      await firstConnection(client, o.timeoutMs);
    } catch (cause) {
      void client.endAsync(true).catch(() => {});
      const code = (cause as { code?: number }).code;
      if (REFUSED_CODES.has(code ?? -1))
        throw new ReportDeliveryError(
          "BROKER_REFUSED",
          `the broker at ${o.url} refused ${o.username}'s credentials: add the device to its password file (ota-ledger tracker mqtt-config)`,
          { cause },
        );
      throw new ReportDeliveryError(
        "TRACKER_UNREACHABLE",
        `no MQTT broker answers at ${o.url} (${(cause as Error).message}); the report is kept and sent again`,
        { cause },
      );
    }
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    client.on("close", () => {
      if (this.client === client) this.client = undefined;
      for (const w of this.waiting.values())
        w.reject(new ReportDeliveryError("TRACKER_UNREACHABLE", `the broker at ${o.url} closed the connection; the report is sent again`));
    });
    client.on("error", (err) => o.log?.(`mqtt: ${err.message}`));
    const granted = await client.subscribeAsync(o.noticeTopic, { qos: 1 }).catch((cause: Error) => {
      void client.endAsync(true).catch(() => {});
      throw new ReportDeliveryError("TRACKER_UNREACHABLE", `could not subscribe to ${o.noticeTopic} at ${o.url}`, { cause });
    });
    if (granted.some((g) => g.qos >= 0x80)) {
      await client.endAsync(true).catch(() => {});
      throw new ReportDeliveryError(
        "BROKER_REFUSED",
        `the broker at ${o.url} does not let ${o.username} read ${o.noticeTopic}: regenerate its ACL (ota-ledger tracker mqtt-config)`,
      );
    }
    if (this.closed) {
      await client.endAsync(true).catch(() => {});
      throw new ReportDeliveryError("TRACKER_UNREACHABLE", "the MQTT transport is closed");
    }
    this.client = client;
    return client;
  }

  /** An answer on the notices topic: handed to the report it names; anything else is dropped. */
  private onMessage(topic: string, payload: Buffer): void {
    if (topic !== this.o.noticeTopic) return;
    if (payload.length > ANSWER_MAX_BYTES) {
      this.o.log?.(`an answer of ${payload.length} bytes on ${topic} is dropped (at most ${ANSWER_MAX_BYTES})`);
      return;
    }
    let a: ReportTopicAnswer;
    try {
      a = JSON.parse(payload.toString("utf8")) as ReportTopicAnswer;
    } catch {
      this.o.log?.(`an answer on ${topic} is not JSON: dropped`);
      return;
    }
    const w = typeof a?.re === "string" ? this.waiting.get(a.re.toLowerCase()) : undefined;
    if (!w) return; // a duplicate, a late or a stray answer: no report waits for it
    if ("error" in a && (typeof a.error?.code !== "string" || typeof a.error?.message !== "string")) return;
    w.resolve(a);
  }
}
