import type { MqttClient } from "mqtt";
import { mqttClient } from "../net/mqttConnection";
import { InputError, OtaError } from "../core/errors";
import { DEFAULT_TOPIC_PREFIX, deviceOfReportTopic, noticeTopic, reportTag, reportTopicFilter, type ReportTopicAnswer } from "../core/reportTopics";
import { REPORT_BODY_MAX_BYTES } from "../core/wireLimits";
import { moduleMqttPassword, moduleMqttUser } from "../crypto/mqttCredentials";
import { ReportRefused, reportEnvelope } from "./reportIntake";
import type { TrackerModule } from "./trackerModule";

export interface TrackerMqttOptions {
  /** The broker: mqtt://host:port or mqtts://host:port. */
  url: string;
  /** The topics' first levels (default "ota"; agent/core/reportTopics.ts). */
  topicPrefix?: string;
  /** Reports being taken at once, at most; past it a report is answered SERVER_BUSY (default 1,000). */
  maxInFlight?: number;
  /** How long start() waits for the first connection before it carries on and keeps trying (ms; default 10 s). */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RunningTrackerMqtt {
  readonly url: string;
  /** Whether the module is connected to the broker now. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/**
 * The module's report intake over MQTT (ADR 0015), beside its HTTP API: it subscribes to every
 * reports topic of its subtree (`<prefix>/<moduleId>/+/reports`, QoS 1), takes each report
 * exactly as `POST /v1/reports` does (`TrackerModule.takeReport`: the same envelope check, seal,
 * signature or session, standing and counter), and publishes the answer (the notices) on that
 * device's notices topic, tagged with the report's tag. A report must come from the device its
 * topic names (the broker's ACL binds each topic to that device's login): one from another is
 * refused REPORT_NOT_FROM_TOPIC. Logs in as `tracker-<moduleId>` with the password derived from
 * its key (agent/crypto/mqttCredentials.ts). A broker that goes away is tried again every 2 s;
 * the subscription is made again on each connection.
 */
export async function startTrackerMqtt(tracker: TrackerModule, o: TrackerMqttOptions): Promise<RunningTrackerMqtt> {
  const prefix = o.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
  const maxInFlight = o.maxInFlight ?? 1000;
  const log = (line: string) => o.log?.(`mqtt: ${line}`);
  let inFlight = 0;
  let closing = false;
  const client: MqttClient = mqttClient(o.url, {
    clientId: moduleMqttUser(tracker.id),
    username: moduleMqttUser(tracker.id),
    password: moduleMqttPassword(tracker.options.module.privateKey, tracker.id),
    protocolVersion: 5,
    clean: true,
    resubscribe: false, // subscribed on every connect below
    reconnectPeriod: 2000,
    connectTimeout: o.connectTimeoutMs ?? 10_000,
    keepalive: 30,
    properties: { maximumPacketSize: REPORT_BODY_MAX_BYTES + 1024 },
  });
  let wasDown = false;
  client.on("connect", () => {
    client.subscribe(reportTopicFilter(prefix, tracker.id), { qos: 1 }, (err, granted) => {
      if (err || granted?.some((g) => g.qos >= 0x80))
        log(
          `the broker at ${o.url} does not let ${moduleMqttUser(tracker.id)} read ${reportTopicFilter(prefix, tracker.id)}: regenerate its ACL (ota-ledger tracker mqtt-config)`,
        );
    });
    if (wasDown) log(`connected to ${o.url} again`);
    wasDown = false;
  });
  client.on("close", () => {
    if (!wasDown && !closing) log(`the broker at ${o.url} is gone; trying again every 2 s (devices' reports over MQTT wait for it)`);
    wasDown = true;
  });
  client.on("error", (err) => log(err.message));

  const answer = (deviceId: string, a: ReportTopicAnswer) =>
    client.publishAsync(noticeTopic(prefix, tracker.id, deviceId), JSON.stringify(a), { qos: 1, retain: false }).catch((err: Error) => {
      log(`the answer to ${deviceId} was not published: ${err.message}`);
    });

  client.on("message", (topic, payload) => {
    const deviceId = deviceOfReportTopic(prefix, tracker.id, topic);
    if (!deviceId) return;
    void (async () => {
      let re: string | undefined;
      inFlight++;
      try {
        // Parsed once, bounded like the HTTP body, its envelope checked before anything costly.
        if (payload.length > REPORT_BODY_MAX_BYTES) throw new InputError("BAD_REQUEST", `a status report is at most ${REPORT_BODY_MAX_BYTES} bytes`);
        let value: unknown;
        try {
          value = JSON.parse(payload.toString("utf8"));
        } catch {
          throw new InputError("BAD_REQUEST", "the report is not valid JSON");
        }
        const envelope = reportEnvelope(value, tracker.id);
        re = reportTag(envelope);
        if (envelope.from.toLowerCase() !== deviceId)
          throw new ReportRefused("REPORT_NOT_FROM_TOPIC", `a report from ${envelope.from.slice(0, 66)} on device ${deviceId}'s topic`);
        if (inFlight > maxInFlight) throw new OtaError("SERVER_BUSY", "the tracker takes too many reports at once; the device sends again at its next report");
        const r = await tracker.takeReport(envelope);
        await answer(deviceId, { re, accepted: true, ...r });
      } catch (err) {
        // An envelope that cannot be tagged is answered with nothing: no report waits for it.
        if (re === undefined) return;
        if (err instanceof OtaError) await answer(deviceId, { re, error: { code: err.code, message: err.message } });
        else {
          log(`internal error on a report of ${deviceId}: ${(err as Error).stack ?? err}`);
          await answer(deviceId, { re, error: { code: "INTERNAL", message: "internal error" } });
        }
      } finally {
        inFlight--;
      }
    })();
  });

  // The first connection, or its refusal: a wrong password or ACL is said at once; a broker that
  // is not there yet is tried again in the background.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      log(`no broker answers at ${o.url} yet; trying again every 2 s`);
      done();
    }, o.connectTimeoutMs ?? 10_000);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      client.off("connect", done);
      client.off("error", refused);
      resolve();
    };
    const refused = (err: Error & { code?: number }) => {
      if (err.code !== 4 && err.code !== 5 && err.code !== 0x86 && err.code !== 0x87) return;
      clearTimeout(timer);
      client.off("connect", done);
      client.off("error", refused);
      closing = true;
      void client.endAsync(true).catch(() => {});
      reject(
        new OtaError(
          "TRACKER_MQTT_REFUSED",
          `the broker at ${o.url} refused the module's login ${moduleMqttUser(tracker.id)}: write its password file with \`ota-ledger tracker mqtt-config\` and restart it`,
          { cause: err },
        ),
      );
    };
    client.on("connect", done);
    client.on("error", refused);
  });
  return {
    url: o.url,
    get connected() {
      return client.connected;
    },
    close: async () => {
      closing = true;
      await client.endAsync(true).catch(() => {});
    },
  };
}
