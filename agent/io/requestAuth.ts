import { isAddress, isHexString } from "ethers";
import { DeviceCredential, decodeDeviceCredential } from "../crypto/deviceCredential";
import { HEADER, recoverAccount, recoverDeviceKey, SignedRequestFields } from "../crypto/requestSignature";
import { AuthenticationError, InputError } from "../core/errors";

/** A signed request that is refused; its code (AUTH_MISSING, AUTH_MALFORMED, AUTH_SIGNATURE, AUTH_STALE, AUTH_REPLAY, SERVER_BUSY) names why. */
export class RequestRefused extends AuthenticationError {}

type Headers = Record<string, string | string[] | undefined>;

export interface RequestToCheck {
  audience: string; // this server's origin
  method: string;
  path: string; // path with query, as received
  headers: Headers;
  body?: Uint8Array | string;
}

/**
 * Checks signed requests (agent/crypto/requestSignature.ts) and refuses replays: a timestamp more
 * than `windowMs` away from the server's clock, or older than the server's start, is stale; a
 * nonce is remembered while its timestamp is fresh, so a request is accepted once. Nonces seen
 * before a restart are forgotten, which is why requests signed before the start are refused.
 * Nonces are kept in buckets of `windowMs` by timestamp, so expiry drops whole buckets; past
 * `maxNonces` the server answers SERVER_BUSY rather than grow.
 */
export class RequestAuthenticator {
  private readonly buckets = new Map<number, Set<string>>(); // floor(timestamp / window) -> identity|nonce
  private size = 0;
  private readonly startedAt: number;

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxNonces = 500_000,
  ) {
    this.startedAt = now();
  }

  /** The device's credential, once the signature by its enrolled key is checked and the request is fresh. */
  device(req: RequestToCheck): { credential: DeviceCredential; context: string | undefined } {
    const encoded = header(req.headers, HEADER.device);
    if (!encoded) throw new RequestRefused("AUTH_MISSING", "the request carries no device credential (x-ota-device)");
    let credential: DeviceCredential;
    try {
      credential = decodeDeviceCredential(encoded);
    } catch (err) {
      throw new RequestRefused("AUTH_MALFORMED", err instanceof InputError ? err.message : "malformed device credential");
    }
    const { fields, signature } = this.fields(req, credential.record.id);
    let key: string;
    try {
      key = recoverDeviceKey(fields, signature);
    } catch {
      throw new RequestRefused("AUTH_SIGNATURE", "the device signature is malformed");
    }
    if (key.toLowerCase() !== credential.record.publicKey.toLowerCase()) {
      throw new RequestRefused("AUTH_SIGNATURE", "the request is not signed by the key in the device record");
    }
    this.consume(fields);
    return { credential, context: fields.context };
  }

  /** The Ethereum account that signed the request, once checked and fresh. */
  account(req: RequestToCheck): string {
    const claimed = header(req.headers, HEADER.account);
    if (!claimed) throw new RequestRefused("AUTH_MISSING", "the request carries no account (x-ota-account)");
    if (!isAddress(claimed)) throw new RequestRefused("AUTH_MALFORMED", "x-ota-account is not an address");
    const { fields, signature } = this.fields(req, claimed);
    let signer: string;
    try {
      signer = recoverAccount(fields, signature);
    } catch {
      throw new RequestRefused("AUTH_SIGNATURE", "the account signature is malformed");
    }
    if (signer.toLowerCase() !== claimed.toLowerCase()) throw new RequestRefused("AUTH_SIGNATURE", `the request is not signed by ${claimed}`);
    this.consume(fields);
    return signer;
  }

  private fields(req: RequestToCheck, identity: string): { fields: SignedRequestFields; signature: string } {
    const timestamp = Number(header(req.headers, HEADER.timestamp));
    const nonce = header(req.headers, HEADER.nonce) ?? "";
    const signature = header(req.headers, HEADER.signature) ?? "";
    if (!signature) throw new RequestRefused("AUTH_MISSING", "the request carries no signature (x-ota-signature)");
    if (!Number.isSafeInteger(timestamp)) throw new RequestRefused("AUTH_MALFORMED", "x-ota-timestamp must be milliseconds since the epoch");
    if (!/^[0-9a-f]{32}$/.test(nonce)) throw new RequestRefused("AUTH_MALFORMED", "x-ota-nonce must be 16 random bytes in lower-case hex");
    if (!isHexString(signature, 65)) throw new RequestRefused("AUTH_MALFORMED", "x-ota-signature must be a 65-byte hex signature");
    const now = this.now();
    if (Math.abs(now - timestamp) > this.windowMs || timestamp < this.startedAt) {
      throw new RequestRefused("AUTH_STALE", `the request was signed at ${timestamp}, outside the accepted window around ${now}`);
    }
    return {
      fields: {
        audience: req.audience,
        method: req.method,
        path: req.path,
        identity,
        timestamp,
        nonce,
        body: req.body,
        context: header(req.headers, HEADER.context),
      },
      signature,
    };
  }

  private consume(fields: SignedRequestFields): void {
    const current = Math.floor(this.now() / this.windowMs);
    for (const [bucket, nonces] of this.buckets) {
      if (bucket < current - 2) {
        this.size -= nonces.size;
        this.buckets.delete(bucket);
      }
    }
    const key = `${fields.identity.toLowerCase()}|${fields.nonce}`;
    const bucket = Math.floor(fields.timestamp / this.windowMs);
    // A fresh timestamp lies within one window of now, so its nonce can only sit in these buckets.
    for (const b of [bucket - 1, bucket, bucket + 1]) {
      if (this.buckets.get(b)?.has(key)) throw new RequestRefused("AUTH_REPLAY", "this request was already received");
    }
    if (this.size >= this.maxNonces) throw new RequestRefused("SERVER_BUSY", "too many signed requests in the replay window");
    let set = this.buckets.get(bucket);
    if (!set) this.buckets.set(bucket, (set = new Set()));
    set.add(key);
    this.size += 1;
  }
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
