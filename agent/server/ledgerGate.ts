import type { Provider, TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { readUpdateFacts, type UpdateFacts } from "../chain/ledgerLens";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import type { InstalledVersion } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { fetchRelease, LedgerRelease } from "../chain/releaseEvents";
import type { RpcSender } from "../chain/eventStream";
import { verifyLedgerRelease } from "../chain/verifyLedgerRelease";
import { VerificationError } from "../core/errors";
import { Refusal } from "./refusals";
import { EntitlementReads, type EntitlementFacts, type EntitlementReadsOptions } from "./entitlementReads";
import { verifyDeviceProof } from "../crypto/deviceTree";
import { DEVICE_STANDING, RELEASE_STATUS, ledgerName, type DeviceStandingName, type ReleaseStatusName } from "../core/ledgerCodes";

/**
 * What the firmware server asks of the ledger. Release records are immutable once published, so a
 * verified record is kept in memory; everything that can change (status, bars, device standing,
 * the installable check) is read live on every request, so a revocation or suspension takes
 * effect at once.
 */
export class LedgerGate {
  private readonly verified = new Map<string, LedgerRelease>();

  /** Entitlement questions asked together and their yes remembered (issue 17). */
  readonly entitlements: EntitlementReads;

  constructor(
    readonly registry: UpdateRegistry,
    readonly fleet: FleetRegistry,
    readonly domain: TypedDataDomain,
    private readonly fromBlock = 0,
    /** Where administrators attach update policies; without it, the registry's check alone. */
    readonly policies?: UpdatePolicies,
    /** `lens`: a deployed update-check lens (agent/chain/ledgerLens); `entitlements`: how questions are batched and remembered. */
    o: { lens?: string; entitlements?: EntitlementReadsOptions } = {},
  ) {
    const provider = registry.runner!.provider!;
    this.releaseLens = { provider, registry, lens: o.lens };
    this.entitlements = new EntitlementReads({ ...this.releaseLens, fleet, policies }, o.entitlements);
  }

  /** The lens read of a release alone (no device, no policy): the registry, its provider, a deployed lens if any. */
  private readonly releaseLens: { provider: Provider; registry: UpdateRegistry; lens?: string };

  /** The device's standing and the ledger's verdict on the release for it (registry check, then policy), in one read shared with other devices. */
  async entitlementFacts(release: LedgerRelease, credential: DeviceCredential, installed: InstalledVersion[], evidence = "0x"): Promise<EntitlementFacts> {
    return this.ledger(() => this.entitlements.facts(release, credential, installed, evidence));
  }

  /**
   * Whether a device's credential is plausibly enrolled, for the request admission (a filter
   * before the signature is recovered, not the decision: entitlementFacts reads the standing).
   * A batch device's proof is checked here against its batch's root, read once per batch; a
   * device enrolled singly is asked about.
   */
  async admitDevice(c: DeviceCredential): Promise<DeviceStandingName> {
    if (c.batchId === 0) return this.deviceStanding(c);
    const batch = await this.batch(c.batchId);
    if (!batch || !verifyDeviceProof(c.record, c.proof, batch.root)) return "unknown";
    return batch.revoked ? "revoked" : "active";
  }

  private readonly batches = new Map<number, { read: Promise<{ root: string; revoked: boolean } | undefined>; at: number }>();

  /**
   * A batch's root and whether it was withdrawn, remembered a minute (a withdrawal also forgets
   * it); the devices of a batch arriving together share one read.
   */
  private batch(id: number): Promise<{ root: string; revoked: boolean } | undefined> {
    const known = this.batches.get(id);
    if (known && Date.now() - known.at < 60_000) return known.read;
    if (this.batches.size > 10_000) this.batches.clear();
    const read = this.ledger(() => this.fleet.deviceBatch(id)).then(([root, count, revoked]) =>
      Number(count) === 0 ? undefined : { root: String(root), revoked: Boolean(revoked) },
    );
    this.batches.set(id, { read, at: Date.now() });
    read.catch(() => this.batches.get(id)?.read === read && this.batches.delete(id)); // an outage is not remembered
    return read;
  }

  /**
   * Forgets the releases verified so far: a key retired as compromised makes the releases it signed
   * from its compromise time on invalid (docs/adr/0016), so a record once verified is checked again.
   */
  forgetVerifiedReleases(): void {
    this.verified.clear();
  }

  /** Forgets what a ledger event may have changed (the server's follower calls it). */
  forgetEntitlements(): void {
    this.entitlements.forget();
    this.batches.clear();
  }

  /** The release, checked against storage and its author's signature; refuses if unknown or forged. */
  async release(releaseId: string): Promise<LedgerRelease> {
    const key = releaseId.toLowerCase();
    const cached = this.verified.get(key);
    if (cached) return cached;
    // A storage read first: an unknown id is answered without scanning the logs.
    if ((await this.releaseStatus(releaseId)) === "none") throw new Refusal("RELEASE_UNKNOWN", `the ledger has no release ${releaseId}`);
    const release = await this.ledger(() => fetchRelease(this.registry, this.domain, releaseId, this.fromBlock));
    if (!release) throw new Refusal("RELEASE_UNKNOWN", `the ledger has no release ${releaseId}`);
    try {
      await verifyLedgerRelease({ ...this.releaseLens, domain: this.domain }, release);
    } catch (err) {
      if (err instanceof VerificationError) throw new Refusal("RELEASE_NOT_VERIFIED", err.message, { reason: err.code });
      throw err;
    }
    this.verified.set(key, release);
    return release;
  }

  async releaseStatus(releaseId: string): Promise<ReleaseStatusName> {
    return ledgerName(RELEASE_STATUS, await this.ledger(() => this.registry.releaseStatus(releaseId)));
  }

  async providerBarred(providerId: number): Promise<boolean> {
    const [, barred] = await this.ledger(() => this.registry.getFunction("provider")(providerId));
    return barred as boolean;
  }

  async deviceStanding(c: DeviceCredential): Promise<DeviceStandingName> {
    return ledgerName(DEVICE_STANDING, await this.ledger(() => this.fleet.deviceStanding(c.record, c.batchId, c.proof)));
  }

  /** A release's signer, its registration and its provider's bar, read in one lens read (no device). */
  async releaseFacts(release: Pick<LedgerRelease, "id" | "record" | "signer" | "signature">): Promise<UpdateFacts> {
    return this.ledger(() => readUpdateFacts(this.releaseLens, { release }));
  }

  async authorProvider(account: string): Promise<number> {
    return Number(await this.ledger(() => this.registry.authorProvider(account)));
  }

  async hasAnyRole(account: string, roles: string[]): Promise<boolean> {
    for (const role of roles) {
      if (await this.ledger(() => this.registry.hasRole(role, account))) return true;
    }
    return false;
  }

  /** Raw JSON-RPC to the registry's node, for the ledger event stream. */
  get rpc(): RpcSender {
    const provider = this.registry.runner?.provider as unknown as Partial<RpcSender> | undefined;
    if (typeof provider?.send !== "function")
      throw new Error("the registry client's provider cannot send JSON-RPC requests: connect it to a JSON-RPC provider");
    return provider as RpcSender;
  }

  async blockNumber(): Promise<number> {
    return this.ledger(() => this.registry.runner!.provider!.getBlockNumber());
  }

  private ledger<T>(call: () => Promise<T>): Promise<T> {
    return askLedger(call);
  }
}

/** One read of the ledger for the server: an RPC failure is the ledger being unavailable (503), never a refusal of the device. */
export async function askLedger<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await callLedger(call);
  } catch (err) {
    if (err instanceof LedgerUnavailable) throw new Refusal("LEDGER_UNAVAILABLE", err.message);
    throw err;
  }
}
