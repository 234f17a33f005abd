import { ZeroHash, id, type Interface } from "ethers";
import {
  UpdateRegistry__factory,
  FleetRegistry__factory,
  UpdatePolicies__factory,
  StagedRollout__factory,
  ApprovalPolicy__factory,
  LocationPolicy__factory,
  MaintenanceWindowPolicy__factory,
  AllOfPolicy__factory,
  AllowlistSoakPolicy__factory,
  PilotFleetPolicy__factory,
  StatusAnchors__factory,
  ReleaseDeltas__factory,
  ReleaseBundles__factory,
} from "../chain/contracts";
import { formatVersion } from "../core/version";

/** The contract interfaces whose custom errors the CLI decodes: the registries, the policies (the examples too) and the anchors. */
export const REVERT_INTERFACES: Interface[] = [
  UpdateRegistry__factory.createInterface(),
  FleetRegistry__factory.createInterface(),
  UpdatePolicies__factory.createInterface(),
  StagedRollout__factory.createInterface(),
  ApprovalPolicy__factory.createInterface(),
  LocationPolicy__factory.createInterface(),
  MaintenanceWindowPolicy__factory.createInterface(),
  AllOfPolicy__factory.createInterface(), // AnyOfPolicy shares ComposedPolicy's errors
  PilotFleetPolicy__factory.createInterface(), // the worked examples of docs/writing-a-policy.md
  AllowlistSoakPolicy__factory.createInterface(),
  StatusAnchors__factory.createInterface(),
  ReleaseDeltas__factory.createInterface(),
  ReleaseBundles__factory.createInterface(),
];

/** Role ids as the registry defines them (keccak256 of the name; the default admin is zero). */
const ROLE_NAMES: Record<string, string> = {
  [ZeroHash]: "default admin",
  [id("ADMINISTRATOR_ROLE")]: "administrator",
  [id("AUTHOR_ROLE")]: "author",
  [id("AUDITOR_ROLE")]: "auditor",
  [id("TRACKER_ROLE")]: "tracker",
};
const role = (value: unknown) => ROLE_NAMES[String(value)] ?? String(value);

/** What a revert means for the person at the keyboard, and what to do about it. */
export interface RevertExplanation {
  why: string;
  hint?: string;
}
type Explain = (args: Record<string, unknown>) => RevertExplanation;

const wrongKey = (account: unknown, roles: string) => ({
  why: `the account ${account} is not ${roles}`,
  hint: "send with a key that holds the role (OTA_PRIVATE_KEY), or have an administrator grant it",
});

/**
 * Explanations of the custom errors administrators meet; an error not listed is still named
 * with its arguments. Keyed by error name; arguments by their ABI names.
 */
export const REVERT_EXPLANATIONS: Record<string, Explain> = {
  ReleaseDeltasUnknownRelease: (a) => ({ why: `release ${a.releaseId} is not on the registry` }),
  ReleaseDeltasNotAuthor: (a) => wrongKey(a.account, `an author of provider ${a.provider}`),
  ReleaseDeltasReleaseRevoked: (a) => ({ why: `release ${a.releaseId} is revoked: a revoked release takes no delta` }),
  ReleaseDeltasProviderBarred: (a) => ({ why: `provider ${a.provider} is barred: it records no deltas` }),
  ReleaseDeltasComponentMismatch: () => ({
    why: "the base release is of another component",
    hint: "a delta is from an older release of the same component (--delta-from <version>)",
  }),
  ReleaseDeltasBaseNotOlder: (a) => ({
    why: `the base ${shownVersion(a.fromVersion)} is not older than ${shownVersion(a.version)}`,
    hint: "a delta is from an older release of the same component",
  }),
  ReleaseDeltasAlreadyRecorded: (a) => ({ why: `the ledger already records a delta of ${a.releaseId} from ${a.fromReleaseId}: deltas are immutable` }),
  ReleaseDeltasTooMany: (a) => ({ why: `release ${a.releaseId} already carries ${a.maxCount} deltas, the most ReleaseDeltas records` }),
  ReleaseDeltasEmptyField: () => ({ why: "the delta's hash, root or size is zero" }),
  ReleaseDeltasBadLink: (a) => ({ why: `the delta's link is ${a.length} bytes; 1 to ${a.maxLength} are taken` }),
  // ReleaseBundles (ADR 0019): `bundle create` checks its input first; these are what slips through.
  ReleaseBundlesEmptyName: () => ({ why: "the bundle name is empty", hint: "give --name of 1 to 64 bytes" }),
  ReleaseBundlesNameTooLong: (a) => ({ why: `the bundle name is ${a.length} bytes, above the limit of ${a.maxLength}`, hint: "use a shorter --name" }),
  ReleaseBundlesInvalidVersion: (a) => ({ why: `the bundle version ${a.version} is not a well-formed version` }),
  ReleaseBundlesVersionNotIncreasing: (a) => ({
    why: `version ${shownVersion(a.proposed)} is not above ${shownVersion(a.latest)}, provider ${a.provider}'s latest bundle "${a.name}"`,
    hint: "give a higher --version (REQ-10d-i)",
  }),
  ReleaseBundlesMemberCount: (a) => ({ why: `${a.count} members were given; a bundle has ${a.minCount} to ${a.maxCount}` }),
  ReleaseBundlesUnknownRelease: (a) => ({
    why: `member ${a.index} (${a.releaseId}) is not a release on the registry`,
    hint: "give published releases (ota-ledger release list --component <name>)",
  }),
  ReleaseBundlesMemberRevoked: (a) => ({
    why: `member ${a.index}, release ${a.releaseId}, is revoked and never installed`,
    hint: "bundle a newer release of its component",
  }),
  ReleaseBundlesMixedProviders: (a) => ({
    why: `member ${a.index} is of provider ${a.found}, the others of provider ${a.expected}: a bundle is one provider's releases`,
  }),
  ReleaseBundlesCreatorNotAuthor: (a) => ({
    why: `the account ${a.account} is not an author of provider ${a.provider}, the members' provider`,
    hint: `send with an author's key (OTA_PRIVATE_KEY), or have an administrator add it: ota-ledger provider author add ${a.account} --provider ${a.provider}`,
  }),
  ReleaseBundlesProviderBarred: (a) => ({
    why: `provider ${a.provider} is barred: it creates no bundles`,
    hint: "an administrator can lift the bar: ota-ledger provider unbar <id>",
  }),
  ReleaseBundlesMembersNotAscending: (a) => ({
    why: `member ${a.index} is not after the one before it by component: one release per component, in ascending order`,
  }),
  ReleaseBundlesNoCommonHardware: () => ({ why: "no hardware class is supported by every member", hint: "bundle releases built for a common hardware class" }),
  ReleaseBundlesDependencyNotSatisfied: (a) => ({
    why: `member ${a.index}'s dependency ${a.dependency} on component ${a.component} is not met by the bundle's release of it, ${shownVersion(a.memberVersion)}`,
    hint: "bundle a release of that component in the dependency's range",
  }),
  ReleaseBundlesUnknownBundle: (a) => ({ why: `no bundle has id ${a.bundleId}` }),
  ReleaseBundlesMembersMismatch: (a) => ({ why: `the records given are not bundle ${a.bundleId}'s members in its order (entry ${a.index} differs)` }),
  AccessControlUnauthorizedAccount: (a) => wrongKey(a.account, `${article(role(a.neededRole))}`),
  UpdateRegistryUnauthorized: (a) => wrongKey(a.account, `${article(role(a.roleA))} or ${article(role(a.roleB))}`),
  FleetRegistryUnauthorized: (a) =>
    role(a.role) === "tracker"
      ? {
          why: `the account ${a.account} does not hold TRACKER_ROLE`,
          hint: `an administrator grants it with \`ota-ledger tracker grant ${a.account}\`, or send with a key that holds it (OTA_PRIVATE_KEY)`,
        }
      : wrongKey(a.account, article(role(a.role))),
  FleetRegistryNotTrackerModuleOwner: (a) => ({
    why: `tracker module ${a.moduleId} is owned by ${a.owner}, the account that registered it, not by ${a.account}`,
    hint: "send with the owner's key (OTA_PRIVATE_KEY), or have an administrator do it; to run modules of your own, register one without --parent",
  }),
  UpdateRegistryMajorVersionJump: (a) => ({
    why: `the release raises the major version from ${a.latestMajor} to ${a.proposedMajor}, more than ${a.maxStep} at once`,
    hint: "publish the next major version (docs/adr/0008-bounded-major-version-jumps.md)",
  }),
  UpdateRegistryVersionNotIncreasing: (a) => ({
    why: `version ${shownVersion(a.proposed)} is not above the latest published ${shownVersion(a.latest)} of component ${a.component}`,
    hint: "publish a higher version (REQ-10d-i); ota-ledger release list --component <name> lists the component's releases",
  }),
  UpdateRegistryEmptyName: () => ({ why: "the name is empty", hint: "give a name of 1 to 64 bytes" }),
  UpdateRegistryNameTooLong: (a) => ({
    why: `the name is ${a.length} bytes, above the limit of ${a.maxLength}`,
    hint: "use a shorter name",
  }),
  UpdateRegistryProviderNameTaken: (a) => ({
    why: `a provider named "${a.name}" is already registered`,
    hint: "choose another name",
  }),
  UpdateRegistryUnknownProvider: (a) => ({
    why: `no provider has id ${a.provider}`,
    hint: "check the id (ota-ledger provider show <id>) or register the provider first (ota-ledger provider register <name>)",
  }),
  UpdateRegistryProviderBarred: (a) => ({
    why: `provider ${a.provider} is barred`,
    hint: "an administrator can lift the bar: ota-ledger provider unbar <id>",
  }),
  UpdateRegistryProviderNotBarred: (a) => ({ why: `provider ${a.provider} is not barred, so there is no bar to lift` }),
  UpdateRegistryZeroAddress: () => ({ why: "the zero address was given where an account is needed" }),
  UpdateRegistrySignerAlreadyAdded: (a) => ({ why: `${a.signer} already signs for provider ${a.provider}` }),
  UpdateRegistrySignerNotAuthorized: (a) => ({
    why: `${a.signer} is not a key that may sign releases of provider ${a.provider} now`,
    hint: `see ota-ledger provider signer show ${a.provider} ${a.signer}; a retired key's releases stay valid, new ones need a current key`,
  }),
  UpdateRegistrySignerCompromised: (a) => ({
    why: `${a.signer} was retired from provider ${a.provider} as compromised since ${shownTime(a.since)}: it never signs again, and only an earlier compromise time can be given`,
    hint: `add a freshly generated key: ota-ledger provider signer add ${a.provider} <address>`,
  }),
  UpdateRegistrySignerLimitReached: (a) => ({
    why: `provider ${a.provider} has had ${a.limit} signing keys, as many as a release can name`,
    hint: "add a key back that was retired (not as compromised), or register the components under a new provider",
  }),
  UpdateRegistryCompromiseInFuture: (a) => ({
    why: `the compromise time ${shownTime(a.since)} is after the ledger's time ${shownTime(a.now)}`,
    hint: "give the time the key was first exposed, now or earlier",
  }),
  UpdateRegistryInvalidSignature: (a) => ({
    why: `the release record's signature is not ${a.signer}'s (an EOA's signature over another record, or a contract signer that does not vouch for it)`,
    hint: "sign the exact record with the provider's registered signing key (release publish does), or for an ERC-1271 signer give --signer <contract> and check that it accepts the key",
  }),
  UpdateRegistryAuthorAlreadyRegistered: (a) => ({
    why: `${a.account} is already an author of provider ${a.provider}`,
    hint: "an account authors for one provider: remove it first to move it (ota-ledger provider author remove <address>)",
  }),
  UpdateRegistryAuthorNeedsProvider: (a) => ({
    why: `${a.account} can become an author only with a provider`,
    hint: "use ota-ledger provider author add <address> --provider <id>",
  }),
  UpdateRegistryNotAuthorOfProvider: (a) => ({
    why: `${a.account} is not an author${Number(a.provider) === 0 ? "" : ` of provider ${a.provider}`}`,
  }),
  UpdateRegistryHardwareClassNameTaken: (a) => ({
    why: `a hardware class named "${a.name}" is already registered`,
    hint: "see ota-ledger hardware list",
  }),
  UpdateRegistryUnknownHardwareClass: (a) => ({
    why: `no hardware class has id ${a.hardwareClass}`,
    hint: "see ota-ledger hardware list",
  }),
  UpdateRegistryHardwareClassLimitReached: (a) => ({ why: `all ${a.limit} hardware class ids are in use` }),
  UpdateRegistryComponentExists: (a) => ({
    why: `the component ${a.component} is already registered`,
    hint: "see ota-ledger component show <name>",
  }),
  UpdateRegistryUnknownComponent: (a) => ({
    why: `no component has id ${a.component}`,
    hint: "check the name (the id is keccak256 of it) or register it: ota-ledger component register <name> --provider <id>",
  }),
  FleetRegistryUnknownHardwareClass: (a) => ({
    why: `no hardware class has id ${a.hardwareClass}`,
    hint: "see ota-ledger hardware list",
  }),
  FleetRegistryZeroDeviceId: () => ({ why: "the device id is zero" }),
  FleetRegistryInvalidPublicKey: () => ({ why: "the public key is not a 33-byte compressed secp256k1 key" }),
  FleetRegistryDeviceAlreadyEnrolled: (a) => ({
    why: `device ${a.deviceId} is already enrolled`,
    hint: "to give it a new key, revoke its record first",
  }),
  FleetRegistryEmptyBatch: () => ({ why: "the batch is empty" }),
  FleetRegistryDeviceAlreadySuspended: (a) => ({ why: `device ${a.deviceId} is already suspended` }),
  FleetRegistryDeviceNotSuspended: (a) => ({ why: `device ${a.deviceId} is not suspended, so there is nothing to reinstate` }),
  FleetRegistryZeroModuleId: () => ({ why: "the tracker module id is zero", hint: "set tracker.moduleId to a label or a non-zero bytes32" }),
  FleetRegistryTrackerModuleExists: (a) => ({
    why: `tracker module ${a.moduleId} is already registered (ids are never reused, not even after retirement)`,
    hint: "choose another tracker.moduleId (OTA_TRACKER_MODULE)",
  }),
  FleetRegistryUnknownTrackerModule: (a) => ({
    why: `tracker module ${a.moduleId} is not registered, or it or a module above it was retired`,
    hint: "register the parent module first (ota-ledger tracker register on its machine), or fix tracker.parent.id / --parent",
  }),
  FleetRegistryTrackerHierarchyTooDeep: (a) => ({
    why: `a module under ${a.parent} would be more than ${a.maxDepth} modules deep`,
    hint: "attach the module to a module higher up",
  }),
};

/** A block time from a revert's arguments, as ISO-8601. */
function shownTime(value: unknown): string {
  const seconds = Number(value);
  return Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(value);
}

/** A uint64 version from a revert's arguments, as people write it. */
function shownVersion(value: unknown): string {
  try {
    return formatVersion(BigInt(String(value)));
  } catch {
    return String(value);
  }
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`;
}
