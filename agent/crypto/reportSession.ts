import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { AuthenticationError, InputError } from "../core/errors";
import type { OpenedMessage } from "./sealedMessage";

/**
 * Report sessions (ADR 0013): a device's status reports to one tracker module under a symmetric
 * key, so that the tracker opens and authenticates a report with one AES-GCM (a few µs) instead of
 * an ECDH and a signature recovery (about 150 µs).
 *
 * A session is offered in a full sealed report (sealedMessage.ts: ECIES to the module, signed by
 * the device's enrolled key). The device draws a 32-byte secret and a 16-byte session id; the
 * report's signed body names the id and sha256(secret) (the commitment), and the secret travels
 * beside the signed message inside the same ECIES seal (sealed, not signed: a module that
 * forwards the signed report upstream does not hand over the secret). The module takes the
 * session only if the secret matches the signed commitment, so the key is the device's own offer,
 * confidential to the device and this module.
 *
 *   key             = HKDF-SHA256(secret, salt = session id, info = INFO | device id | module id)
 *   session report  = { v: 1, kind, from, to, session: "0x<id>", sealed: "0x" nonce (12) | AES-256-GCM(JSON{kind, from, to, issuedAt, body}) | tag (16) }
 *   aad             = "v1|session|<kind>|<from>|<to>|<session id>"
 *
 * The nonce is random (not the counter): a counter a device reused after a crash can never reuse
 * a nonce. Replays are refused by the report's counter, as for full reports.
 */

const INFO = "OTA Ledger report session v1";
export const SESSION_ID_BYTES = 16;
export const SESSION_SECRET_BYTES = 32;
const NONCE = 12;
const TAG = 16;

/** A session report on the wire: a sealed envelope naming the session it was sealed under. */
export interface SessionEnvelope {
  v: 1;
  kind: string;
  from: string;
  to: string;
  session: string; // 0x + 32 hex: the session id
  sealed: string; // 0x hex: nonce | ciphertext | tag
}

/** What a device offers in a full report: the id and commitment go in the signed body, the secret beside it. */
export interface SessionOffer {
  id: string; // 0x + 32 hex
  secret: string; // 0x + 64 hex
  commitment: string; // 0x + 64 hex, sha256(secret)
}

export function newSessionOffer(): SessionOffer {
  const secret = randomBytes(SESSION_SECRET_BYTES);
  return { id: "0x" + randomBytes(SESSION_ID_BYTES).toString("hex"), secret: "0x" + secret.toString("hex"), commitment: commitmentOf(secret) };
}

/** sha256 of the session secret, as the signed report names it. */
export function commitmentOf(secret: Uint8Array | string): string {
  const s = typeof secret === "string" ? Buffer.from(secret.replace(/^0x/, ""), "hex") : Buffer.from(secret);
  return "0x" + createHash("sha256").update(s).digest("hex");
}

/** The AES-256-GCM key of a session between `deviceId` and `moduleId`. */
export function sessionKey(secret: string, sessionId: string, deviceId: string, moduleId: string): Buffer {
  const s = Buffer.from(secret.replace(/^0x/, ""), "hex");
  if (s.length !== SESSION_SECRET_BYTES) throw new InputError("REPORT_SESSION_SECRET", `a session secret is ${SESSION_SECRET_BYTES} bytes`);
  return Buffer.from(
    hkdfSync("sha256", s, Buffer.from(sessionId.replace(/^0x/, ""), "hex"), Buffer.from(`${INFO}|${deviceId.toLowerCase()}|${moduleId.toLowerCase()}`), 32),
  );
}

function aad(kind: string, from: string, to: string, session: string): Buffer {
  return Buffer.from(`v1|session|${kind}|${from.toLowerCase()}|${to.toLowerCase()}|${session.toLowerCase()}`);
}

/** Seals a message under a session key (the device's side). */
export function sealWithSession<T>(message: OpenedMessage<T>, session: { id: string; key: Uint8Array }): SessionEnvelope {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv("aes-256-gcm", session.key, nonce);
  cipher.setAAD(aad(message.kind, message.from, message.to, session.id));
  const body = Buffer.concat([
    cipher.update(JSON.stringify({ kind: message.kind, from: message.from, to: message.to, issuedAt: message.issuedAt, body: message.body })),
    cipher.final(),
  ]);
  return {
    v: 1,
    kind: message.kind,
    from: message.from,
    to: message.to,
    session: session.id.toLowerCase(),
    sealed: "0x" + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("hex"),
  };
}

/**
 * Opens a session report with its session's key (the tracker's side): it opens only if it was
 * sealed under this key for this kind, sender, recipient and session, and unaltered; the inner
 * message must agree with the envelope.
 */
export function openWithSession<T>(envelope: SessionEnvelope, key: Uint8Array): OpenedMessage<T> {
  const s = Buffer.from(envelope.sealed.replace(/^0x/, ""), "hex");
  if (s.length < NONCE + TAG) throw new AuthenticationError("REPORT_SESSION_AUTHENTICATION", `a session report's seal is at least ${NONCE + TAG} bytes`);
  const decipher = createDecipheriv("aes-256-gcm", key, s.subarray(0, NONCE));
  decipher.setAAD(aad(envelope.kind, envelope.from, envelope.to, envelope.session));
  decipher.setAuthTag(s.subarray(s.length - TAG));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(s.subarray(NONCE, s.length - TAG)), decipher.final()]);
  } catch (cause) {
    throw new AuthenticationError(
      "REPORT_SESSION_AUTHENTICATION",
      "the session report was not sealed under this session's key, or was altered: send a full sealed report (it opens a new session)",
      { cause },
    );
  }
  let inner: OpenedMessage<T>;
  try {
    inner = JSON.parse(plain.toString("utf8"));
  } catch {
    throw new AuthenticationError("MESSAGE_MALFORMED", "the session report is not JSON");
  }
  if (!inner || inner.kind !== envelope.kind || inner.from !== envelope.from || inner.to !== envelope.to || !Number.isSafeInteger(inner.issuedAt)) {
    throw new AuthenticationError("MESSAGE_MALFORMED", "the session report disagrees with its envelope");
  }
  return { kind: inner.kind, from: inner.from, to: inner.to, issuedAt: inner.issuedAt, body: inner.body };
}

/**
 * A session key kept at rest by the tracker (fleet database), sealed under a key derived from the
 * module's private key: a copy of the database (a backup) does not hold usable session keys, and a
 * session from before the module key rotated no longer opens.
 */
export function wrapSessionKey(key: Uint8Array, restKey: Uint8Array, deviceId: string, sessionId: string): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv("aes-256-gcm", restKey, nonce);
  cipher.setAAD(Buffer.from(`${deviceId.toLowerCase()}|${sessionId.toLowerCase()}`));
  return Buffer.concat([nonce, cipher.update(key), cipher.final(), cipher.getAuthTag()]);
}

/** The session key, or undefined if it was not wrapped with this module key for this device and session. */
export function unwrapSessionKey(wrapped: Uint8Array, restKey: Uint8Array, deviceId: string, sessionId: string): Buffer | undefined {
  const w = Buffer.from(wrapped);
  if (w.length !== NONCE + 32 + TAG) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", restKey, w.subarray(0, NONCE));
    decipher.setAAD(Buffer.from(`${deviceId.toLowerCase()}|${sessionId.toLowerCase()}`));
    decipher.setAuthTag(w.subarray(NONCE + 32));
    return Buffer.concat([decipher.update(w.subarray(NONCE, NONCE + 32)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** The key that wraps session keys at rest: derived from the module's private key (a new module key, new wraps). */
export function sessionRestKey(modulePrivateKey: string): Buffer {
  const priv = Buffer.from(modulePrivateKey.replace(/^0x/, ""), "hex");
  return Buffer.from(hkdfSync("sha256", priv, Buffer.alloc(0), Buffer.from("OTA Ledger report sessions at rest v1"), 32));
}
