/**
 * The registries' enums (contracts/interfaces/UpdateRegistryTypes.sol), by index, as names every
 * agent uses: a view returns the index, the agents speak the name. Keep in the contract's order.
 */

/** ReleaseStatus */
export const RELEASE_STATUS = ["none", "active", "vulnerable", "revoked"] as const;
export type ReleaseStatusName = (typeof RELEASE_STATUS)[number];

/** DeviceStanding */
export const DEVICE_STANDING = ["unknown", "active", "suspended", "revoked"] as const;
export type DeviceStandingName = (typeof DEVICE_STANDING)[number];

/** InstallCheck, as report and refusal codes. */
export const INSTALL_CHECK = [
  "INSTALLABLE",
  "RELEASE_UNKNOWN",
  "RELEASE_REVOKED",
  "RELEASE_VULNERABLE",
  "PROVIDER_BARRED",
  "HARDWARE_NOT_SUPPORTED",
  "NOT_NEWER_THAN_INSTALLED",
  "DEPENDENCY_NOT_INSTALLED",
  "DEPENDENCY_VERSION_OUT_OF_RANGE",
  "SIGNER_COMPROMISED", // its key was retired as compromised since a time at or before its publication (docs/adr/0016)
] as const;
export type InstallCheckCode = (typeof INSTALL_CHECK)[number];

/** StagedRollout.RolloutState (contracts/policies/StagedRollout.sol) */
export const ROLLOUT_STATE = ["none", "scheduled", "open", "paused", "halted", "aborted"] as const;
export type RolloutStateName = (typeof ROLLOUT_STATE)[number];

/** The name of an enum index a view returned; an index this code does not know is a mismatch with the contract. */
export function ledgerName<T extends readonly string[]>(names: T, index: bigint | number): T[number] {
  const name = names[Number(index)];
  if (name === undefined) throw new RangeError(`the ledger answered ${index}, which this agent does not know: upgrade the agent`);
  return name;
}
