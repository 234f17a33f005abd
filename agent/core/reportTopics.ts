import { createHash } from "node:crypto";

/**
 * Where reports and their answers travel on an MQTT broker (ADR 0015), in one place for the device,
 * the tracker and the broker's ACL file. Each tracker module has its own subtree, each device its
 * own pair of topics in it:
 *
 *   <prefix>/<moduleId>/<deviceId>/reports   the device publishes its sealed reports (QoS 1)
 *   <prefix>/<moduleId>/<deviceId>/notices   the module publishes each answer: the sealed notices (QoS 1)
 *
 * Ids are lower-case 0x hex (66 characters). Nothing is retained. The broker's ACL lets a device
 * write only its own reports topic and read only its own notices topic; the module reads every
 * reports topic of its subtree and writes every notices topic. The topics carry no security: the
 * reports are sealed to the module and signed by the device, the notices sealed to the device and
 * signed by the module, exactly as over HTTP.
 */
export const DEFAULT_TOPIC_PREFIX = "ota";

/** A topic prefix: one to four levels of letters, digits, '.', '_' or '-' (no wildcards, no empty level). */
export const TOPIC_PREFIX_PATTERN = /^[A-Za-z0-9._-]{1,32}(\/[A-Za-z0-9._-]{1,32}){0,3}$/;

/** An MQTT broker's URL: mqtt:// or mqtts:// (TLS), a host and an optional port. */
export const MQTT_URL_PATTERN = /^mqtts?:\/\/[^\s/:]+(:\d{1,5})?\/?$/;

const ID = /^0x[0-9a-f]{64}$/;

export function reportTopic(prefix: string, moduleId: string, deviceId: string): string {
  return `${prefix}/${moduleId.toLowerCase()}/${deviceId.toLowerCase()}/reports`;
}

export function noticeTopic(prefix: string, moduleId: string, deviceId: string): string {
  return `${prefix}/${moduleId.toLowerCase()}/${deviceId.toLowerCase()}/notices`;
}

/** What a module subscribes to: every device's reports topic in its subtree. */
export function reportTopicFilter(prefix: string, moduleId: string): string {
  return `${prefix}/${moduleId.toLowerCase()}/+/reports`;
}

/** The device id a reports topic of this module's subtree names, or undefined for any other topic. */
export function deviceOfReportTopic(prefix: string, moduleId: string, topic: string): string | undefined {
  const head = `${prefix}/${moduleId.toLowerCase()}/`;
  if (!topic.startsWith(head) || !topic.endsWith("/reports")) return undefined;
  const id = topic.slice(head.length, -"/reports".length);
  return ID.test(id) ? id : undefined;
}

/**
 * The tag that ties an answer to the report it answers (MQTT has no request and response): the
 * first 16 bytes of SHA-256 over the report's sealed bytes, as 0x hex. It is not a security
 * check: whatever an answer claims, its notices are verified as any others (sealed to the device,
 * signed by its registered upstream, fresh and newer than the last).
 */
export function reportTag(envelope: { sealed: string }): string {
  return "0x" + createHash("sha256").update(envelope.sealed.toLowerCase()).digest("hex").slice(0, 32);
}

/** A module's answer on a device's notices topic: the HTTP answer's body, or its refusal, with the report's tag. */
export type ReportTopicAnswer =
  | { re: string; accepted: true; counter: number; notices: unknown[]; session?: { id: string; expiresAt: number } }
  | { re: string; error: { code: string; message: string } };
