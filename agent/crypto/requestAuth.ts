import { isAddress, isHexString } from "ethers";
import { DeviceCredential, decodeDeviceCredential } from "./deviceCredential";
import { HEADER, recoverAccount, recoverDeviceKey, SignedRequestFields } from "./requestSignature";
import { AuthenticationError, InputError, OtaError } from "../core/errors";

/**
 * A signed request that is refused; its code (AUTH_MISSING, AUTH_MALFORMED, AUTH_SIGNATURE,
 * AUTH_STALE, AUTH_REPLAY, AUTH_QUOTA, SERVER_BUSY, or the admission's own, e.g.
 * DEVICE_NOT_ENROLLED) names why. An AUTH_STALE refusal carries the server's clock in
 * `details.serverTime` (ms), for the client to correct its request time.
 */
export class RequestRefused extends AuthenticationError {}

export interface RequestAuthLimits {
  windowMs: number;
  maxNonces: number;
  maxNoncesPerIdentity: number;
  admittedTtlMs: number;
  refusedTtlMs: number;
  maxAdmissions: number;
  maxLookups: number;
}

/** The limits of signed requests, in one place. */
export const REQUEST_AUTH_LIMITS: Readonly<RequestAuthLimits> = {
  /** A request's timestamp is accepted this far from the server's clock (ms); its nonce is kept as long. */
  windowMs: 60_000,
  /** Most nonces kept at once, over all identities; past it the server answers SERVER_BUSY rather than grow. */
  maxNonces: 500_000,
  /**
   * Most signed requests of one identity (a device, an account) within a window: 1,000 a minute
   * covers a device fetching a large artifact block by block (a 256 MiB artifact is 1,024 blocks
   * of 256 KiB, fetched over more than a minute); past it the identity is answered AUTH_QUOTA, and
   * the others are not affected.
   */
  maxNoncesPerIdentity: 1_000,
  /** How long an admission (enrolled, or holding a role on the ledger) is remembered (ms). */
  admittedTtlMs: 60_000,
  /** How long a refused admission (not enrolled, no role) is remembered (ms): an enrolment is seen this soon. */
  refusedTtlMs: 10_000,
  /** Most admissions remembered (oldest forgotten first). */
  maxAdmissions: 100_000,
  /** Most admission lookups on the ledger at once (unknown identities only); past it SERVER_BUSY. */
  maxLookups: 64,
};

/**
 * Where nonces are kept: in memory (forgotten on restart) or in the server's database (kept over a
 * restart, and shared by the processes that use the same database file).
 */
export interface NonceStore {
  /** True when nonces outlive the process: requests signed before a restart need not be refused. */
  readonly durable: boolean;
  /** Records `identity|nonce` until `expiresAt` (ms); false when it is already recorded (a replay). */
  add(identity: string, nonce: string, expiresAt: number): boolean;
  /** Nonces of `identity` recorded and not expired at `now`. */
  countOf(identity: string, now: number): number;
  /** Nonces recorded and not expired at `now`, over all identities (may lag behind by a prune). */
  total(now: number): number;
  /** Forgets what expired at `now`. */
  prune(now: number): void;
}

/** Nonces in memory, in buckets of `windowMs` by expiry, so that expiry drops whole buckets. */
export class MemoryNonceStore implements NonceStore {
  readonly durable = false;
  private readonly buckets = new Map<number, Map<string, string>>(); // floor(expiresAt / window) -> key -> identity
  private readonly perIdentity = new Map<string, number>();
  private size = 0;

  constructor(private readonly windowMs: number = REQUEST_AUTH_LIMITS.windowMs) {}

  add(identity: string, nonce: string, expiresAt: number): boolean {
    const key = `${identity}|${nonce}`;
    const bucket = Math.floor(expiresAt / this.windowMs);
    // A fresh timestamp lies within one window of now, so its nonce can only sit in these buckets.
    for (const b of [bucket - 1, bucket, bucket + 1]) if (this.buckets.get(b)?.has(key)) return false;
    let set = this.buckets.get(bucket);
    if (!set) this.buckets.set(bucket, (set = new Map()));
    set.set(key, identity);
    this.perIdentity.set(identity, (this.perIdentity.get(identity) ?? 0) + 1);
    this.size += 1;
    return true;
  }

  countOf(identity: string): number {
    return this.perIdentity.get(identity) ?? 0;
  }

  total(): number {
    return this.size;
  }

  prune(now: number): void {
    // Whole buckets only: a bucket is dropped once all its nonces expired (it may keep some up to a window longer).
    const current = Math.floor(now / this.windowMs);
    for (const [bucket, entries] of this.buckets) {
      if (bucket >= current) continue;
      for (const identity of entries.values()) {
        const n = (this.perIdentity.get(identity) ?? 1) - 1;
        if (n > 0) this.perIdentity.set(identity, n);
        else this.perIdentity.delete(identity);
      }
      this.size -= entries.size;
      this.buckets.delete(bucket);
    }
  }
}

/**
 * Who may spend a nonce: asked (and remembered, see REQUEST_AUTH_LIMITS) before a request's
 * signature is recovered and its nonce kept, so a key the ledger never enrolled costs a cached
 * answer, not a replay-cache slot. Answers undefined to admit, or the refusal to answer with.
 */
export interface Admission {
  device?(credential: DeviceCredential): Promise<OtaError | undefined>;
  account?(address: string): Promise<OtaError | undefined>;
  /**
   * What the ledger is asked to admit this device, when identities share it (e.g. "batch 7": a
   * batch's root, which its devices' proofs are checked against). Identities asking the same
   * question at once take one lookup slot between them (maxLookups), so a fleet of one batch
   * arriving together is not refused SERVER_BUSY. Default: the identity itself.
   */
  deviceLookup?(credential: DeviceCredential): string | undefined;
}

export interface RequestAuthOptions {
  now?: () => number;
  store?: NonceStore;
  admission?: Admission;
  limits?: Partial<RequestAuthLimits>;
}

type Headers = Record<string, string | string[] | undefined>;

export interface RequestToCheck {
  audience: string; // this server's origin
  method: string;
  path: string; // path with query, as received
  headers: Headers;
  body?: Uint8Array | string;
}

/**
 * Checks signed requests (agent/crypto/requestSignature.ts) and refuses replays, in this order,
 * the cheap checks first: the headers' form; the timestamp within `windowMs` of the server's clock
 * (and, with a store that forgets on restart, not older than the server's start); the identity's
 * admission (enrolled, or holding a role: cached); the signature; the identity's quota of nonces;
 * then the nonce, kept while its timestamp is fresh, so a request is accepted once.
 */
export class RequestAuthenticator {
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly store: NonceStore;
  private readonly limits: RequestAuthLimits;
  private readonly admitted = new Map<string, { refusal: OtaError | undefined; until: number }>();
  private readonly lookups = new Map<string, Promise<OtaError | undefined>>();
  /** The ledger questions in flight, and how many identities wait on each. */
  private readonly questions = new Map<string, number>();
  private lastPrune = 0;

  constructor(private readonly o: RequestAuthOptions = {}) {
    this.now = o.now ?? Date.now;
    this.limits = { ...REQUEST_AUTH_LIMITS, ...o.limits };
    this.store = o.store ?? new MemoryNonceStore(this.limits.windowMs);
    this.startedAt = this.now();
  }

  /** The device's credential, once it is admitted, its signature by its enrolled key checked and the request fresh. */
  async device(req: RequestToCheck): Promise<{ credential: DeviceCredential; context: string | undefined }> {
    const encoded = header(req.headers, HEADER.device);
    if (!encoded) throw new RequestRefused("AUTH_MISSING", "the request carries no device credential (x-ota-device)");
    let credential: DeviceCredential;
    try {
      credential = decodeDeviceCredential(encoded);
    } catch (err) {
      throw new RequestRefused("AUTH_MALFORMED", err instanceof InputError ? err.message : "malformed device credential");
    }
    const { fields, signature } = this.fields(req, credential.record.id);
    const device = this.o.admission?.device;
    if (device) {
      const c = credential;
      await this.admit(
        `device|${c.record.id}|${c.record.publicKey}|${c.record.hardwareClass}|${c.record.network}|${c.record.region}|${c.batchId}|${c.proof.join(",")}`.toLowerCase(),
        () => device(c),
        this.o.admission?.deviceLookup?.(c),
      );
    }
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

  /** The Ethereum account that signed the request, once admitted, checked and fresh. */
  async account(req: RequestToCheck): Promise<string> {
    const claimed = header(req.headers, HEADER.account);
    if (!claimed) throw new RequestRefused("AUTH_MISSING", "the request carries no account (x-ota-account)");
    if (!isAddress(claimed)) throw new RequestRefused("AUTH_MALFORMED", "x-ota-account is not an address");
    const { fields, signature } = this.fields(req, claimed);
    const account = this.o.admission?.account;
    if (account) await this.admit(`account|${claimed}`.toLowerCase(), () => account(claimed));
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
    // With nonces forgotten on restart, a request signed before the start might have been seen.
    const beforeStart = !this.store.durable && timestamp < this.startedAt;
    if (Math.abs(now - timestamp) > this.limits.windowMs || beforeStart) {
      throw new RequestRefused(
        "AUTH_STALE",
        beforeStart
          ? `the request was signed at ${timestamp}, before this server started at ${this.startedAt}: sign it again`
          : `the request was signed at ${timestamp}, more than ${this.limits.windowMs} ms from the server's clock (${now}): correct the clock, or sign with the server's time (details.serverTime, or the Date header)`,
        { details: { serverTime: now, windowMs: this.limits.windowMs } },
      );
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

  /**
   * The identity's admission, from memory or asked once (lookups of one identity are shared);
   * `question` names what the ledger is asked, shared by identities that ask the same at once.
   */
  private async admit(key: string, ask: () => Promise<OtaError | undefined>, question = key): Promise<void> {
    const now = this.now();
    const known = this.admitted.get(key);
    if (known && known.until > now) {
      if (known.refusal) throw known.refusal;
      return;
    }
    let lookup = this.lookups.get(key);
    if (!lookup) {
      const asking = this.questions.get(question) ?? 0;
      if (asking === 0 && this.questions.size >= this.limits.maxLookups)
        throw new RequestRefused("SERVER_BUSY", "too many unknown identities are being looked up on the ledger at once; retry later");
      this.questions.set(question, asking + 1);
      lookup = ask().finally(() => {
        this.lookups.delete(key);
        const left = (this.questions.get(question) ?? 1) - 1;
        if (left > 0) this.questions.set(question, left);
        else this.questions.delete(question);
      });
      this.lookups.set(key, lookup);
    }
    const refusal = await lookup; // a ledger outage throws, and is not remembered
    this.admitted.delete(key);
    if (this.admitted.size >= this.limits.maxAdmissions) this.admitted.delete(this.admitted.keys().next().value!);
    this.admitted.set(key, { refusal, until: this.now() + (refusal ? this.limits.refusedTtlMs : this.limits.admittedTtlMs) });
    if (refusal) throw refusal;
  }

  private consume(fields: SignedRequestFields): void {
    const now = this.now();
    if (now - this.lastPrune >= 1_000) {
      this.store.prune(now);
      this.lastPrune = now;
    }
    const identity = fields.identity.toLowerCase();
    if (this.store.countOf(identity, now) >= this.limits.maxNoncesPerIdentity) {
      throw new RequestRefused(
        "AUTH_QUOTA",
        `${identity} sent more than ${this.limits.maxNoncesPerIdentity} signed requests within ${this.limits.windowMs} ms: slow down and retry`,
      );
    }
    if (this.store.total(now) >= this.limits.maxNonces) throw new RequestRefused("SERVER_BUSY", "too many signed requests in the replay window");
    if (!this.store.add(identity, fields.nonce, fields.timestamp + this.limits.windowMs))
      throw new RequestRefused("AUTH_REPLAY", "this request was already received");
  }
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
