import { pbkdf2Sync, randomBytes } from "node:crypto";
import { DEFAULT_TOPIC_PREFIX } from "../core/reportTopics";
import { deviceMqttPassword, moduleMqttPassword, moduleMqttUser } from "../crypto/mqttCredentials";

/**
 * A mosquitto broker's configuration for one tracker module and its devices (ADR 0015), as
 * `ota-ledger tracker mqtt-config` writes it: `mosquitto.conf`, `passwd` (each login's password
 * hashed as mosquitto 2 hashes it: PBKDF2-SHA512, 101 rounds, a 12-byte salt) and `acl`:
 *
 *   user tracker-<moduleId>                          the module reads every report of its subtree
 *   topic read <prefix>/<moduleId>/+/reports         and writes every device's notices
 *   topic write <prefix>/<moduleId>/+/notices
 *   pattern write <prefix>/<moduleId>/%u/reports     a device (logged in as its id) writes its own reports
 *   pattern read <prefix>/<moduleId>/%u/notices      and reads its own notices, nothing else
 *
 * Only active devices get a login: a suspended or withdrawn device loses the broker with the next
 * file. Nothing is retained (retain_available false) or kept over a restart (persistence false):
 * an answer is for a report waiting now, and a device sends a new report after an outage.
 */
export interface BrokerConfigInput {
  moduleId: string;
  modulePrivateKey: string;
  devices: { id: string; publicKey: string }[];
  /** Where the broker listens. */
  host: string;
  port: number;
  /** The folder the files will be in (the conf names the other two by their absolute paths). */
  dir: string;
  topicPrefix?: string;
  /** The user the broker runs as once it dropped root (mosquitto's `user`; absent: its default, "mosquitto", which must be able to read the files). */
  runAs?: string;
}

/** mosquitto's largest packet: a report (96 KiB) or an answer (132 KiB) and their topic, with room. */
export const BROKER_MAX_PACKET_BYTES = 256 * 1024;

export function mosquittoPasswordLine(user: string, password: string, salt: Buffer = randomBytes(12)): string {
  const hash = pbkdf2Sync(password, salt, 101, 64, "sha512");
  return `${user}:$7$101$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export function brokerConfigFiles(i: BrokerConfigInput): { "mosquitto.conf": string; passwd: string; acl: string } {
  const prefix = i.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
  const m = i.moduleId.toLowerCase();
  const header = `# written by \`ota-ledger tracker mqtt-config\` for tracker module ${m} (docs/adr/0015-mqtt-transport.md)\n# write it again when devices are enrolled, suspended or re-keyed\n`;
  const conf = [
    header.trimEnd(),
    "per_listener_settings false",
    `listener ${i.port} ${i.host}`,
    "allow_anonymous false",
    // A client id is the login's, whatever the client asks: otherwise one device could take the
    // module's id (or another device's), and mosquitto would drop the connection holding it.
    "use_username_as_clientid true",
    `password_file ${i.dir}/passwd`,
    `acl_file ${i.dir}/acl`,
    ...(i.runAs ? [`user ${i.runAs}`] : []),
    "persistence false",
    "retain_available false",
    `max_packet_size ${BROKER_MAX_PACKET_BYTES}`,
    "max_queued_messages 100",
    "set_tcp_nodelay true",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "",
  ].join("\n");
  const passwd = [
    mosquittoPasswordLine(moduleMqttUser(m), moduleMqttPassword(i.modulePrivateKey, m)),
    ...i.devices.map((d) => mosquittoPasswordLine(d.id.toLowerCase(), deviceMqttPassword(i.modulePrivateKey, d.publicKey, d.id, m))),
    "",
  ].join("\n");
  const acl = [
    header,
    `user ${moduleMqttUser(m)}`,
    `topic read ${prefix}/${m}/+/reports`,
    `topic write ${prefix}/${m}/+/notices`,
    "",
    "# every other login is a device, named by its id",
    `pattern write ${prefix}/${m}/%u/reports`,
    `pattern read ${prefix}/${m}/%u/notices`,
    "",
  ].join("\n");
  return { "mosquitto.conf": conf, passwd, acl };
}
