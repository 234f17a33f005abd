import { createHash, randomBytes } from "node:crypto";
import { getBytes, hashMessage, recoverAddress } from "ethers";
import { recoverCompressedKey, signDigest } from "./secp256k1";

/**
 * Signed HTTP requests, so that a server can tell who asks and refuse replays, whatever the
 * transport. Two kinds of signer:
 *  - a device, with its secp256k1 device key (the public key enrolled on the ledger);
 *  - an account (an author, an administrator), with its Ethereum key (EIP-191 personal message).
 *
 * The signed message binds the server it is meant for (its origin, so that one server cannot
 * replay a request to another), the method, the path with its query, the signer's identity, a
 * millisecond timestamp, a random nonce and the SHA-256 of the body, plus any extra context
 * (e.g. the device's installed components). The server refuses stale timestamps and nonces it
 * has seen (requestReplayGuard.ts).
 */

export const REQUEST_SIGNATURE_DOMAIN = "OTA-Ledger-Request-v1";

export const HEADER = {
  device: "x-ota-device",
  account: "x-ota-account",
  timestamp: "x-ota-timestamp",
  nonce: "x-ota-nonce",
  signature: "x-ota-signature",
  context: "x-ota-context",
} as const;

export interface SignedRequestFields {
  audience: string; // the server's origin, e.g. "http://127.0.0.1:8600"
  method: string;
  path: string; // path and query, as sent
  identity: string; // device id (bytes32 hex) or account address
  timestamp: number; // ms since the epoch
  nonce: string; // 16 random bytes, hex
  body?: Uint8Array | string;
  context?: string; // extra signed data, sent in the x-ota-context header
}

export function requestMessage(f: SignedRequestFields): string {
  const bodyHash = createHash("sha256")
    .update(f.body === undefined ? new Uint8Array() : typeof f.body === "string" ? Buffer.from(f.body) : f.body)
    .digest("hex");
  return [
    REQUEST_SIGNATURE_DOMAIN,
    new URL(f.audience).origin,
    f.method.toUpperCase(),
    f.path,
    f.identity.toLowerCase(),
    String(f.timestamp),
    f.nonce,
    bodyHash,
    f.context ?? "",
  ].join("\n");
}

function digest(message: string): Uint8Array {
  return createHash("sha256").update(message).digest();
}

export function freshNonce(): string {
  return randomBytes(16).toString("hex");
}

/** Headers for a request signed by a device key. `credential` is the device's enrolment proof (base64url JSON). */
export function signDeviceRequest(
  devicePrivateKey: string,
  deviceId: string,
  credential: string,
  req: { audience: string; method: string; path: string; body?: Uint8Array | string; context?: string; now?: number },
): Record<string, string> {
  const fields: SignedRequestFields = { ...req, identity: deviceId, timestamp: req.now ?? Date.now(), nonce: freshNonce() };
  // libsecp256k1 where it loads (secp256k1.ts): a fleet in one process signs thousands of requests.
  const signature = signDigest(getBytes(devicePrivateKey), digest(requestMessage(fields)));
  return {
    [HEADER.device]: credential,
    [HEADER.timestamp]: String(fields.timestamp),
    [HEADER.nonce]: fields.nonce,
    [HEADER.signature]: signature,
    ...(req.context === undefined ? {} : { [HEADER.context]: req.context }),
  };
}

/** The compressed public key that signed a device request (compare with the enrolled key). */
export function recoverDeviceKey(fields: SignedRequestFields, signature: string): string {
  // libsecp256k1 where it loads (about 65 µs against 0.3-2.5 ms in JavaScript): a firmware server
  // recovers one key per device request, three per device and release.
  return recoverCompressedKey(digest(requestMessage(fields)), signature);
}

/** Headers for a request signed by an Ethereum account (EIP-191). */
export async function signAccountRequest(
  wallet: { address: string; signMessage(m: string): Promise<string> },
  req: { audience: string; method: string; path: string; body?: Uint8Array | string; context?: string; now?: number },
): Promise<Record<string, string>> {
  const fields: SignedRequestFields = { ...req, identity: wallet.address, timestamp: req.now ?? Date.now(), nonce: freshNonce() };
  const signature = await wallet.signMessage(requestMessage(fields));
  return {
    [HEADER.account]: wallet.address,
    [HEADER.timestamp]: String(fields.timestamp),
    [HEADER.nonce]: fields.nonce,
    [HEADER.signature]: signature,
    ...(req.context === undefined ? {} : { [HEADER.context]: req.context }),
  };
}

/** The address that signed an account request. */
export function recoverAccount(fields: SignedRequestFields, signature: string): string {
  return recoverAddress(hashMessage(requestMessage(fields)), signature);
}
