import type { TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import type { DeviceRecord } from "../crypto/deviceTree";
import { checkUpdateOnLedger, type LedgerUpdateVerdict } from "../chain/updateCheckOnLedger";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import type { InstalledVersion } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { fetchRelease, LedgerRelease } from "../chain/releaseEvents";
import type { RpcSender } from "../chain/eventStream";
import { verifyLedgerRelease } from "../chain/verifyLedgerRelease";
import { VerificationError } from "../core/errors";
import { Refusal } from "./refusals";
import { DEVICE_STANDING, RELEASE_STATUS, ledgerName, type DeviceStandingName, type ReleaseStatusName } from "../core/ledgerCodes";

/**
 * What the firmware server asks of the ledger. Release records are immutable once published, so a
 * verified record is kept in memory; everything that can change (status, bars, device standing,
 * the installable check) is read live on every request, so a revocation or suspension takes
 * effect at once.
 */
export class LedgerGate {
  private readonly verified = new Map<string, LedgerRelease>();

  constructor(
    readonly registry: UpdateRegistry,
    readonly fleet: FleetRegistry,
    readonly domain: TypedDataDomain,
    private readonly fromBlock = 0,
    /** Where administrators attach update policies; without it, the registry's check alone. */
    readonly policies?: UpdatePolicies,
  ) {}

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
      await verifyLedgerRelease({ registry: this.registry, domain: this.domain }, release);
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

  /** The registry's installable check for this release on this device, then the attached update policy's (APP-II-3, CAP-11.3-h). */
  async updateCheck(release: LedgerRelease, device: DeviceRecord, installed: InstalledVersion[], evidence = "0x"): Promise<LedgerUpdateVerdict> {
    return this.ledger(() => checkUpdateOnLedger({ registry: this.registry, policies: this.policies }, release.record, device, installed, evidence));
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

  // An RPC failure is the ledger being unavailable (503), never a refusal of the device.
  private async ledger<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await callLedger(call);
    } catch (err) {
      if (err instanceof LedgerUnavailable) throw new Refusal("LEDGER_UNAVAILABLE", err.message);
      throw err;
    }
  }
}
