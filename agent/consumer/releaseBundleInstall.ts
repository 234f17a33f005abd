import { promises as fs } from "node:fs";
import path from "node:path";
import type { TypedDataDomain } from "ethers";
import type { ReleaseBundles, UpdateRegistry } from "../chain/contracts";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import { fetchRelease, type LedgerRelease } from "../chain/releaseEvents";
import { OtaError } from "../core/errors";
import { INSTALL_CHECK, ledgerName } from "../core/ledgerCodes";
import type { InstalledVersion } from "../core/release";
import { ContentRejected, isResourceShortage, reportCodeOf, UpdateDeclined } from "../core/updateErrors";
import { isDeliveryFault, type Outcome } from "../core/updateOutcome";
import { decryptArtifact, readArtifactFile } from "../crypto/artifactCipher";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import type { HealthCheck } from "./slots/healthCheck";
import { SlotImageMismatchError } from "./slots/slotErrors";
import type { SlotStore } from "./slots/slotStore";

/**
 * A release bundle on the device (docs/adr/0019): the bundle read from the ledger (ReleaseBundles)
 * with its members' records, the set checked there (checkBundle) and each member checked as any
 * release is, with the other members at their bundle versions; then each member's image verified
 * into its component's inactive slot as a single release's is, and one trial boot for the set,
 * confirmed or rolled back whole by the slot store. Where it stops says what the result is, as for
 * a release (ADR 0009): a refusal of the ledger's checks is `rejected`, a fault on the way to any
 * member's intact artifact and key is `blocked` (retried; nothing is booted), and only what fails
 * once a member's content decrypts is `failed`.
 */

export interface ReleaseBundleDeps {
  chain: { registry: UpdateRegistry; bundles?: ReleaseBundles; domain: TypedDataDomain; fromBlock: number };
  hardwareClass: number;
  deviceId: string;
  privateKey: string;
  slots: SlotStore;
  healthCheck: HealthCheck;
  trialAttempts: number;
  dataDir: string;
  /** The device's own checks of one release (record, signature, status, policy, floors, its own policy), with `installed` as the set would leave it. */
  checkMember(release: LedgerRelease, installed: InstalledVersion[]): Promise<LedgerRelease>;
  /** The verified download of one release's artifact (chunk by chunk against its Merkle root) and its wrapped key; `installed` is what the device tells the server it runs. */
  deliver(release: LedgerRelease, artifactFile: string, installed: InstalledVersion[]): Promise<{ wrappedKey: Buffer }>;
  /** Revoked or barred while downloading: throws the refusal. */
  recheckAfterDownload(release: LedgerRelease): Promise<void>;
  log?: (line: string) => void;
}

export interface ReleaseBundleResult {
  outcome: Outcome;
  code: string;
  /** The member the result is about, when one member decided it. */
  member?: string;
}

/** Reads, checks and installs the bundle as one A/B transaction. */
export async function installReleaseBundle(deps: ReleaseBundleDeps, bundleId: string): Promise<ReleaseBundleResult> {
  const { chain, slots } = deps;
  if (!chain.bundles) return { outcome: "rejected", code: "BUNDLES_NOT_DEPLOYED" };
  const bundles = chain.bundles;
  let stage: "ledger" | "delivery" | "install" = "ledger";
  let member: string | undefined;
  const files: string[] = [];
  try {
    const stored = await callLedger(() => bundles.bundle(bundleId)).catch((err: unknown) => {
      if (err instanceof LedgerUnavailable) throw err;
      throw new OtaError("BUNDLE_UNKNOWN", `no release bundle ${bundleId} on the ledger`, { cause: err });
    });
    const members: LedgerRelease[] = [];
    for (const id of stored.releaseIds) {
      const release = await callLedger(() => fetchRelease(chain.registry, chain.domain, id, chain.fromBlock));
      if (!release) throw new OtaError("RELEASE_UNKNOWN", `member ${id} of bundle ${bundleId} has no ReleasePublished event`);
      members.push(release);
    }
    const installed = slots.installed();
    const versionOf = (component: string) => installed.find((i) => i.component === component.toLowerCase())?.version;
    const pending = members.filter((m) => versionOf(m.record.component) !== m.record.version);
    if (pending.length === 0) return { outcome: "rejected", code: "NOT_NEWER_THAN_INSTALLED" };
    if (slots.snapshot().failedReleases[bundleId])
      throw new UpdateDeclined("PREVIOUSLY_FAILED", `bundle ${bundleId} failed on this device before; it is not retried`);

    // The set on the ledger (APP-II-2): every member fits this hardware, dependencies inside the bundle met by the members, outside it by the device.
    const [verdictIndex, memberIndex] = await callLedger(() =>
      bundles.checkBundle(
        bundleId,
        members.map((m) => m.record),
        deps.hardwareClass,
        installed.map((i) => ({ component: i.component, version: i.version })),
      ),
    );
    const verdict = ledgerName(INSTALL_CHECK, verdictIndex);
    if (verdict !== "INSTALLABLE" && verdict !== "RELEASE_VULNERABLE") {
      member = members[Number(memberIndex)]?.id;
      throw new OtaError(verdict, `the ledger's check of bundle ${bundleId} answers ${verdict} for member ${member}`);
    }
    // Each member as any release is checked, with the other members at their bundle versions.
    const withSet = new Map<LedgerRelease, InstalledVersion[]>();
    for (const m of pending) {
      member = m.id;
      const others = pending.filter((o) => o !== m).map((o) => ({ component: o.record.component.toLowerCase(), version: o.record.version }));
      withSet.set(m, [...installed.filter((i) => !others.some((o) => o.component === i.component)), ...others]);
      await deps.checkMember(m, withSet.get(m)!);
    }

    // Each member verified into its component's inactive slot; one already there (a retry after a blocked delivery) is kept.
    for (const m of pending) {
      member = m.id;
      const component = m.record.component.toLowerCase();
      const boot = slots.snapshot().components[component];
      if (boot && boot.slots[boot.active === "a" ? "b" : "a"]?.releaseId === m.id.toLowerCase()) continue;
      stage = "delivery";
      const artifactFile = path.join(deps.dataDir, "downloads", `${m.id.toLowerCase()}.otae`);
      files.push(artifactFile);
      await fs.mkdir(path.dirname(artifactFile), { recursive: true });
      const { wrappedKey } = await deps.deliver(m, artifactFile, withSet.get(m)!);
      stage = "ledger";
      await deps.recheckAfterDownload(m);
      stage = "delivery";
      let key: Buffer;
      try {
        key = unwrapContentKey(wrappedKey, Buffer.from(deps.privateKey.replace(/^0x/, ""), "hex"), keyWrapContext(m.id.toLowerCase(), deps.deviceId));
      } catch (cause) {
        throw new ContentRejected("KEY_UNWRAP_FAILED", "the wrapped key does not open with this device's key", { cause });
      }
      const image = {
        releaseId: m.id.toLowerCase(),
        version: m.record.version.toString(),
        fileHash: m.record.fileHash.toLowerCase(),
        size: Number(m.record.fileSize),
      };
      try {
        await slots.writeInactive(
          component,
          image,
          keyChecked(decryptArtifact(key, readArtifactFile(artifactFile)), () => (stage = "install")),
        );
      } catch (err) {
        if (err instanceof SlotImageMismatchError) throw new ContentRejected("FILE_HASH_MISMATCH", err.message, { cause: err, details: err.details });
        if (stage === "delivery" && reportCodeOf(err) === "CHUNK_AUTHENTICATION")
          throw new ContentRejected("KEY_MISMATCH", "the content key the server sent does not open the release's first chunk", { cause: err });
        throw err;
      }
      await fs.rm(artifactFile, { force: true });
    }

    // One trial boot for the whole set: confirmed or rolled back whole (CAP-11.1-a-iii).
    stage = "install";
    member = undefined;
    await slots.beginBundleTrial(
      bundleId,
      pending.map((m) => ({ component: m.record.component, releaseId: m.id })),
      deps.trialAttempts,
    );
    const trial = await slots.bootBundleTrial(bundleId, deps.healthCheck);
    return { outcome: trial.outcome, code: trial.code, ...(trial.failedMember ? { member: trial.failedMember } : {}) };
  } catch (err) {
    if (err instanceof UpdateDeclined) return { outcome: "declined", code: err.code };
    const known = err instanceof OtaError && err.code !== "";
    if (!known) deps.log?.(`bundle ${bundleId} (${stage}): ${(err as Error).stack}`);
    const code = reportCodeOf(err);
    const result = ((): ReleaseBundleResult => {
      if (!known && isResourceShortage(err)) return { outcome: "blocked", code: "DEVICE_RESOURCES" };
      if (err instanceof LedgerUnavailable || isDeliveryFault(code)) return { outcome: "blocked", code };
      if (stage === "ledger") return { outcome: "rejected", code };
      if (stage === "delivery") return { outcome: "blocked", code: known ? code : "DELIVERY_ERROR" };
      return { outcome: "failed", code: known ? code : "INSTALL_FAILED" };
    })();
    // A blocked delivery keeps its verified prefix to resume from; anything else starts afresh.
    if (result.outcome !== "blocked") await Promise.all(files.map((f) => fs.rm(f, { force: true })));
    return member ? { ...result, member } : result;
  }
}

/** Passes the decrypted chunks on, calling `onFirst` once the first one has authenticated (the key is the release's). */
async function* keyChecked(chunks: AsyncIterable<Buffer>, onFirst: () => void): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of chunks) {
    if (first) onFirst();
    first = false;
    yield chunk;
  }
}
