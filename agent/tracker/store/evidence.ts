import { getAddress } from "ethers";
import { EVERY_POLICY, joinEvidence } from "../../core/policyEvidence";
import type { StoreConnection } from "./connection";

/**
 * Evidence for update policies (table policy_evidence), per release and device, handed out with
 * notices: each policy of a composition its own part, keyed by its address ('' = evidence given
 * whole to every policy, issue 18).
 */
export class EvidenceStore {
  constructor(private readonly c: StoreConnection) {}

  /**
   * Sets the evidence of a release for these devices, for one policy (its address) or for every
   * policy (EVERY_POLICY), in one transaction. Evidence for every policy replaces a device's keyed
   * parts and a keyed part replaces evidence for every policy: the two cannot travel together.
   * Throws EVIDENCE_INVALID (nothing kept) when a device's parts together exceed the evidence limit.
   */
  set(releaseId: string, policy: string, entries: { deviceId: string; evidence: string }[]): void {
    const release = releaseId.toLowerCase();
    const key = policy === EVERY_POLICY ? EVERY_POLICY : getAddress(policy);
    const clear = this.c.sql(
      key === EVERY_POLICY
        ? `DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy <> ''`
        : `DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`,
    );
    const ins = this.c.sql(`INSERT OR REPLACE INTO policy_evidence (release_id, device_id, policy, evidence) VALUES (?, ?, ?, ?)`);
    this.c.transaction(() => {
      for (const e of entries) {
        const device = e.deviceId.toLowerCase();
        clear.run(release, device);
        ins.run(release, device, key, e.evidence);
        if (key !== EVERY_POLICY) this.of(release, device); // throws when the parts outgrow the limit
      }
    });
  }

  /** Of these devices, the ones holding evidence for every policy of the release (unkeyed, as all evidence was before issue 18). */
  devicesWithWhole(releaseId: string, deviceIds: string[]): string[] {
    const q = this.c.sql(`SELECT 1 FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`);
    return deviceIds.filter((d) => q.get(releaseId.toLowerCase(), d.toLowerCase()) !== undefined);
  }

  /** Moves these devices' evidence for every policy to parts keyed by `policies` (each gets the same bytes). */
  keyWhole(releaseId: string, deviceIds: string[], policies: string[]): void {
    const ins = this.c.sql(
      `INSERT OR REPLACE INTO policy_evidence (release_id, device_id, policy, evidence)
       SELECT release_id, device_id, ?, evidence FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`,
    );
    const del = this.c.sql(`DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`);
    this.c.transaction(() => {
      for (const d of deviceIds) {
        for (const p of policies) ins.run(getAddress(p), releaseId.toLowerCase(), d.toLowerCase());
        del.run(releaseId.toLowerCase(), d.toLowerCase());
      }
    });
  }

  /** Replaces all of a device's evidence for the release with these parts (a parent module's, as it sent them). */
  replace(releaseId: string, deviceId: string, parts: Map<string, string>): void {
    joinEvidence(parts); // throws EVIDENCE_INVALID, nothing changed, when the parts do not fit together
    this.c.transaction(() => {
      this.c.sql(`DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ?`).run(releaseId.toLowerCase(), deviceId.toLowerCase());
      for (const [policy, part] of parts) this.set(releaseId, policy, [{ deviceId, evidence: part }]);
    });
  }

  /** The evidence this device brings to the release's policy (its parts in one envelope), if the tracker holds some. */
  of(releaseId: string, deviceId: string): string | undefined {
    const rows = this.c
      .sql(`SELECT policy, evidence FROM policy_evidence WHERE release_id = ? AND device_id = ? ORDER BY policy`)
      .raw()
      .all(releaseId.toLowerCase(), deviceId.toLowerCase()) as [string, string][];
    return rows.length === 0 ? undefined : joinEvidence(new Map(rows));
  }
}
