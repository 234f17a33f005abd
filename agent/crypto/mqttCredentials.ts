import { hkdfSync } from "node:crypto";
import { getBytes } from "ethers";
import { sharedSecret } from "./secp256k1";

/**
 * The MQTT broker's user names and passwords (ADR 0015), derived rather than handed out: each
 * device's password is known to the device and its tracker module only, and nothing new has to be
 * put on a device or kept by the module.
 *
 * - A device logs in as its id (0x + 64 hex digits, lower case) with
 *   HKDF-SHA256(ECDH(device key, module key), salt = module id, info = "OTA Ledger MQTT device password v1|<deviceId>"),
 *   which the device computes with its own key and the module's registered public key, and the
 *   module (`tracker mqtt-config`) with its own key and the device's enrolled public key.
 * - The module logs in as "tracker-<moduleId>" with HKDF-SHA256(module key, salt = module id,
 *   info = "OTA Ledger MQTT module password v1").
 *
 * A password only lets its holder onto the broker and, through the ACL, onto its own topics: the
 * messages there are sealed and signed whatever the broker does. 32 bytes, base64url (43 characters).
 */
export function deviceMqttPassword(ownPrivateKey: string, peerPublicKey: string, deviceId: string, moduleId: string): string {
  const secret = sharedSecret(getBytes(ownPrivateKey), getBytes(peerPublicKey));
  return derive(secret, moduleId, `OTA Ledger MQTT device password v1|${deviceId.toLowerCase()}`);
}

export function moduleMqttUser(moduleId: string): string {
  return `tracker-${moduleId.toLowerCase()}`;
}

export function moduleMqttPassword(modulePrivateKey: string, moduleId: string): string {
  return derive(Buffer.from(getBytes(modulePrivateKey)), moduleId, "OTA Ledger MQTT module password v1");
}

function derive(secret: Uint8Array, moduleId: string, info: string): string {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.from(moduleId.toLowerCase(), "utf8"), Buffer.from(info, "utf8"), 32)).toString("base64url");
}
