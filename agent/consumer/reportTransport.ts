import { OtaError } from "../core/errors";
import { ERROR_ANSWER_MAX_BYTES, REPORT_ANSWER_MAX_BYTES } from "../core/wireLimits";
import { DEFAULT_TOPIC_PREFIX, noticeTopic, reportTopic } from "../core/reportTopics";
import { deviceMqttPassword } from "../crypto/mqttCredentials";
import type { Envelope } from "../crypto/sealedMessage";
import type { SessionEnvelope } from "../crypto/reportSession";
import { readBoundedBody, readBoundedJson } from "../net/boundedBody";
import { MqttReportTransport } from "./mqttReportTransport";

/**
 * The tracker did not take a report. `code`: TRACKER_UNREACHABLE (no answer: the network, the
 * tracker or the broker is down), TRACKER_REFUSED (the tracker refused it, `refusal` its code), or
 * BROKER_REFUSED (the MQTT broker refused this device's credentials or topic). Each is a delivery
 * fault: the report is built again and sent at the next heartbeat; nothing counts against a release.
 */
export class ReportDeliveryError extends OtaError {
  /** The tracker's own refusal code (its answer's error.code), when it gave one. */
  refusal?: string;
}

/** A report the tracker took: its answer's JSON (`{accepted, counter, notices, session?}`), or why the answer is unusable. */
export interface ReportAnswer {
  body?: unknown;
  /** The answer could not be read (too large, not JSON): the report was taken, this round's notices are lost. */
  unusable?: string;
}

/**
 * How a device's sealed reports reach its tracker module and the answers come back (ADR 0015).
 * A transport only carries bytes: the report is sealed to the module and signed by the device, the
 * notices in the answer sealed to the device and signed by the module, and both are checked by
 * their receiver whatever carried them. HTTP (`POST /v1/reports`, the answer in the response) is
 * the default; MQTT (a report topic and a notices topic per device on a broker) sits beside it.
 */
export interface ReportTransport {
  readonly kind: "http" | "mqtt";
  /** Where reports go, for messages: the tracker's URL or the broker's. */
  readonly target: string;
  /** Sends one sealed report and waits for the module's answer; throws ReportDeliveryError when it was not taken. */
  exchange(envelope: Envelope | SessionEnvelope): Promise<ReportAnswer>;
  /** Ends its connection, if it keeps one. */
  close(): Promise<void>;
}

/** device.json's `tracker.transport`: how reports travel. Absent: HTTP to `tracker.url`. */
export type ReportTransportSetting =
  | { kind: "http" }
  | {
      kind: "mqtt";
      /** The broker: mqtt://host:port or mqtts://host:port (TLS, with the system's CAs). */
      url: string;
      /** The topics' first levels (default "ota"): <prefix>/<moduleId>/<deviceId>/reports and .../notices. */
      topicPrefix?: string;
    };

/** What a device's tracker settings hold (device.json `tracker`, DeviceAgentOptions.tracker). */
export interface TrackerSetting {
  moduleId: string;
  publicKey: string;
  /** The tracker's HTTP URL; needed unless the transport is MQTT. */
  url?: string;
  /** How long a report waits for its answer (ms; default 10 s). */
  timeoutMs?: number;
  transport?: ReportTransportSetting;
}

export const DEFAULT_REPORT_TIMEOUT_MS = 10_000;

/**
 * The transport a device's tracker setting names, for the device whose key and id are given.
 * An MQTT transport logs in as the device id with the password derived from its key and the
 * module's (agent/crypto/mqttCredentials.ts); it connects when it first sends.
 */
export function openReportTransport(tracker: TrackerSetting, device: { privateKey: string; id: string }, log?: (line: string) => void): ReportTransport {
  const timeoutMs = tracker.timeoutMs ?? DEFAULT_REPORT_TIMEOUT_MS;
  const t = tracker.transport;
  if (t?.kind === "mqtt") {
    const prefix = t.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
    const deviceId = device.id.toLowerCase();
    return new MqttReportTransport({
      url: t.url,
      clientId: deviceId,
      username: deviceId,
      password: deviceMqttPassword(device.privateKey, tracker.publicKey, deviceId, tracker.moduleId),
      reportTopic: reportTopic(prefix, tracker.moduleId, deviceId),
      noticeTopic: noticeTopic(prefix, tracker.moduleId, deviceId),
      timeoutMs,
      log,
    });
  }
  if (!tracker.url) throw new OtaError("NO_TRACKER_URL", 'the tracker has no url: give tracker.url, or tracker.transport {kind: "mqtt", url}');
  return new HttpReportTransport(tracker.url, timeoutMs);
}

/** Reports as `POST <url>/v1/reports`; the answer is the response (ADR 0004). Keeps no connection of its own. */
export class HttpReportTransport implements ReportTransport {
  readonly kind = "http";
  constructor(
    readonly target: string,
    private readonly timeoutMs = DEFAULT_REPORT_TIMEOUT_MS,
  ) {}

  async exchange(envelope: Envelope | SessionEnvelope): Promise<ReportAnswer> {
    let res: Response;
    try {
      res = await fetch(new URL("/v1/reports", this.target), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(envelope),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      throw new ReportDeliveryError("TRACKER_UNREACHABLE", `no tracker answers at ${this.target}; the report is kept and sent again`, { cause });
    }
    if (!res.ok) {
      const why = (
        (await readBoundedJson(res, ERROR_ANSWER_MAX_BYTES, `the tracker's refusal of a report`).catch(() => undefined)) as
          { error?: { code?: string; message?: string } } | undefined
      )?.error;
      const error = new ReportDeliveryError(
        "TRACKER_REFUSED",
        `the tracker at ${this.target} answered ${res.status} to the report${why ? `: ${why.code} ${why.message}` : ""}`,
      );
      if (typeof why?.code === "string") error.refusal = why.code;
      throw error;
    }
    try {
      return { body: JSON.parse((await readBoundedBody(res, REPORT_ANSWER_MAX_BYTES, `the tracker's answer to a report`)).toString("utf8")) };
    } catch (err) {
      return { unusable: (err as Error).message };
    }
  }

  async close(): Promise<void> {}
}
