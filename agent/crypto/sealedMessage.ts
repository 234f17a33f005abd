import { createHash } from "node:crypto";
import { SigningKey, hashMessage, recoverAddress } from "ethers";
import { AuthenticationError, InputError } from "../core/errors";
import { eciesOpen, eciesSeal } from "./ecies";
import { recoverCompressedKey } from "./secp256k1";

/**
 * Messages between tracker modules and devices (update notices, status reports, image queries):
 * signed by the sender, then sealed to the recipient's public key, so their authenticity and
 * confidentiality do not depend on the transport (ARCHITECTURE: "signed by the sender's key and
 * encrypted to the recipient's key").
 *
 *   envelope = { v: 1, kind, from, to, sealed }          sent in the clear, for routing
 *   sealed   = ECIES(recipient, aad = "v1|kind|from|to", JSON{ kind, from, to, issuedAt, body, signature })
 *   signature over sha256(JSON{ kind, from, to, issuedAt, body }):
 *     - a device: its enrolled secp256k1 device key (raw ECDSA over the digest);
 *     - a tracker module: its registered Ethereum signer (EIP-191 over the digest's hex).
 * The recipient checks that the inner kind/from/to match the envelope, that the signer is the
 * one the ledger names for `from`, and the freshness of `issuedAt` (its own rule).
 *
 * `beside` (optional, in the seal, outside the signature): values for the recipient only, which a
 * message forwarded as signed must not carry, e.g. a report session's secret, bound to the signed
 * body by its commitment (reportSession.ts, ADR 0013).
 */

export interface Envelope {
  v: 1;
  kind: string;
  from: string;
  to: string;
  sealed: string; // hex
}

export interface OpenedMessage<T> {
  kind: string;
  from: string;
  to: string;
  issuedAt: number;
  body: T;
}

export type MessageSigner = { kind: "device"; privateKey: string } | { kind: "account"; signMessage(message: string): Promise<string> };

const INFO = "OTA Ledger sealed message v1";

function digest(m: Omit<OpenedMessage<unknown>, never>): Buffer {
  return createHash("sha256")
    .update(JSON.stringify({ kind: m.kind, from: m.from, to: m.to, issuedAt: m.issuedAt, body: m.body }))
    .digest();
}

function aad(kind: string, from: string, to: string): Buffer {
  return Buffer.from(`v1|${kind}|${from.toLowerCase()}|${to.toLowerCase()}`);
}

export async function sealMessage<T>(
  message: OpenedMessage<T>,
  signer: MessageSigner,
  recipientPublicKey: string,
  beside?: Record<string, string>,
): Promise<Envelope> {
  const d = digest(message);
  const signature = signer.kind === "device" ? new SigningKey(signer.privateKey).sign(d).serialized : await signer.signMessage("0x" + d.toString("hex"));
  const inner = Buffer.from(JSON.stringify({ ...message, signature, ...(beside ? { beside } : {}) }));
  const sealed = eciesSeal(inner, Buffer.from(recipientPublicKey.replace(/^0x/, ""), "hex"), aad(message.kind, message.from, message.to), INFO);
  return { v: 1, kind: message.kind, from: message.from, to: message.to, sealed: "0x" + sealed.toString("hex") };
}

/**
 * Opens an envelope addressed to `me` with the recipient's private key and returns the message and
 * who signed it, as the kind of signer expected from the sender: a device's compressed public key
 * or an account's address, for the caller to compare with what the ledger holds for `from`, and
 * the signature itself (to forward). One signature recovery per message (report intake is a hot path).
 */
export function openMessage<T>(
  envelope: Envelope,
  recipientPrivateKey: string,
  me: string,
  signerKind: MessageSigner["kind"],
): { message: OpenedMessage<T>; signedBy: string; signature: string; beside?: Record<string, string> } {
  if (
    !envelope ||
    envelope.v !== 1 ||
    typeof envelope.sealed !== "string" ||
    typeof envelope.kind !== "string" ||
    typeof envelope.from !== "string" ||
    typeof envelope.to !== "string"
  ) {
    throw new InputError("MESSAGE_MALFORMED", "not a sealed message envelope (v, kind, from, to, sealed)");
  }
  if (envelope.to.toLowerCase() !== me.toLowerCase()) throw new AuthenticationError("MESSAGE_NOT_FOR_ME", `the message is for ${envelope.to}, not ${me}`);
  const plain = eciesOpen(
    Buffer.from(envelope.sealed.replace(/^0x/, ""), "hex"),
    Buffer.from(recipientPrivateKey.replace(/^0x/, ""), "hex"),
    aad(envelope.kind, envelope.from, envelope.to),
    INFO,
    "MESSAGE",
  );
  let inner: OpenedMessage<T> & { signature: string; beside?: unknown };
  try {
    inner = JSON.parse(plain.toString("utf8"));
  } catch {
    throw new AuthenticationError("MESSAGE_MALFORMED", "the sealed message is not JSON");
  }
  if (inner.kind !== envelope.kind || inner.from !== envelope.from || inner.to !== envelope.to || !Number.isSafeInteger(inner.issuedAt)) {
    throw new AuthenticationError("MESSAGE_MALFORMED", "the sealed message disagrees with its envelope");
  }
  const { signature, beside, ...message } = inner;
  const opened = { message, signedBy: recoverMessageSigner(message, signature, signerKind), signature };
  if (beside === undefined) return opened;
  if (!beside || typeof beside !== "object" || Array.isArray(beside) || !Object.values(beside).every((v) => typeof v === "string"))
    throw new AuthenticationError("MESSAGE_MALFORMED", "the sealed message's values beside the signature are not strings");
  return { ...opened, beside: beside as Record<string, string> };
}

/**
 * Who signed an opened message: a device's compressed public key or an account's address. Used
 * again by a module above the recipient, to which the recipient forwards the message as signed
 * (a status report keeps its device's signature end to end).
 */
export function recoverMessageSigner(message: OpenedMessage<unknown>, signature: string, signerKind: MessageSigner["kind"]): string {
  const d = digest(message);
  try {
    return signerKind === "device" ? recoverCompressedKey(d, signature) : recoverAddress(hashMessage("0x" + d.toString("hex")), signature);
  } catch {
    throw new AuthenticationError("MESSAGE_SIGNATURE", "the message signature is malformed");
  }
}
