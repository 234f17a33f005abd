import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes, TypedDataDomain } from "ethers";
import { componentId, ReleaseRecord, dependsOn } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { registryDomain, signRelease, computeReleaseId } from "../../agent/crypto/releaseSignature";
import type { UpdateRegistry, FleetRegistry } from "../../typechain-types";
import { findWitnesses as findWitnessesOf } from "../../agent/chain/witnesses";

/** Seconds a default-admin transfer waits in tests. */
export const ADMIN_DELAY = 3 * 24 * 60 * 60;

export const ROLES = {
  DEFAULT_ADMIN: ethers.ZeroHash,
  ADMINISTRATOR: keccak256(toUtf8Bytes("ADMINISTRATOR_ROLE")),
  AUTHOR: keccak256(toUtf8Bytes("AUTHOR_ROLE")),
  AUDITOR: keccak256(toUtf8Bytes("AUDITOR_ROLE")),
  TRACKER: keccak256(toUtf8Bytes("TRACKER_ROLE")),
};

/** Deterministic provider signing keys: not the accounts that send transactions. */
export const ACME_SIGNER = new Wallet(keccak256(toUtf8Bytes("acme release signing key")));
export const GLOBEX_SIGNER = new Wallet(keccak256(toUtf8Bytes("globex release signing key")));

export const COMPONENTS = {
  bootloader: componentId("acme.bootloader"),
  sensorFw: componentId("acme.sensor-fw"),
  radioFw: componentId("acme.radio-fw"),
  globexApp: componentId("globex.app"),
};

/** A bare deployment: the registry and the fleet registry, nothing registered. */
export async function deployRegistryFixture() {
  const [admin, acmeAuthor, globexAuthor, auditor, tracker, outsider, newAdmin] = await ethers.getSigners();
  const registry = (await ethers.deployContract("UpdateRegistry", [ADMIN_DELAY, admin.address])) as unknown as UpdateRegistry;
  const fleet = (await ethers.deployContract("FleetRegistry", [await registry.getAddress()])) as unknown as FleetRegistry;
  const { chainId } = await ethers.provider.getNetwork();
  const domain = registryDomain(chainId, await registry.getAddress());
  return { registry, fleet, domain, admin, acmeAuthor, globexAuthor, auditor, tracker, outsider, newAdmin };
}

/**
 * A registry with two providers (acme = 1, globex = 2), their signing keys and authors, three
 * hardware classes (1..3), four components, an auditor and a tracker.
 */
export async function catalogFixture() {
  const base = await deployRegistryFixture();
  const { registry, admin, acmeAuthor, globexAuthor, auditor, tracker } = base;
  const r = registry.connect(admin);
  await r.registerProvider("Acme Devices");
  await r.registerProvider("Globex");
  await r.addProviderSigner(1, ACME_SIGNER.address);
  await r.addProviderSigner(2, GLOBEX_SIGNER.address);
  await r.registerAuthor(acmeAuthor.address, 1);
  await r.registerAuthor(globexAuthor.address, 2);
  for (const hw of ["acme-board-rev-a", "acme-board-rev-b", "globex-gateway"]) await r.registerHardwareClass(hw);
  await r.registerComponent("acme.bootloader", 1);
  await r.registerComponent("acme.sensor-fw", 1);
  await r.registerComponent("acme.radio-fw", 1);
  await r.registerComponent("globex.app", 2);
  await r.grantRole(ROLES.AUDITOR, auditor.address);
  await r.grantRole(ROLES.TRACKER, tracker.address);
  return base;
}

let fileCounter = 0;

/** A valid acme release record; override any field. */
export function makeRelease(overrides: Partial<ReleaseRecord> = {}): ReleaseRecord {
  fileCounter += 1;
  return {
    provider: 1,
    component: COMPONENTS.bootloader,
    version: encodeVersion("1.0.0"),
    fileHash: keccak256(toUtf8Bytes(`image ${fileCounter}`)),
    fileLink: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    fileName: "firmware.bin",
    fileSize: 1_048_576n,
    merkleRoot: keccak256(toUtf8Bytes(`chunks ${fileCounter}`)),
    hardware: [1],
    dependencies: [],
    ...overrides,
  };
}

export { dependsOn };

export interface Published {
  id: string;
  record: ReleaseRecord;
  signature: string;
}

/** Signs `record` with `signer` and publishes it from `sender`, finding dependency witnesses. */
export async function publish(
  registry: UpdateRegistry,
  sender: { address: string } & Parameters<UpdateRegistry["connect"]>[0],
  record: ReleaseRecord,
  signer: Wallet,
  domain: TypedDataDomain,
): Promise<Published> {
  const witnesses = await findWitnesses(registry, record);
  const signature = await signRelease(signer, domain, record);
  await (await registry.connect(sender).publishRelease(record, signer.address, signature, witnesses)).wait();
  return { id: computeReleaseId(domain, record), record, signature };
}

/** The newest unrevoked release satisfying each dependency (zero where none). */
export async function findWitnesses(registry: UpdateRegistry, record: ReleaseRecord): Promise<string[]> {
  return findWitnessesOf(registry, record.dependencies);
}

/** What a rejected call must leave untouched: every component's counters and the catalog sizes. */
export async function registrySnapshot(registry: UpdateRegistry) {
  const components = await Promise.all(Object.values(COMPONENTS).map((c) => registry.component(c)));
  return {
    components: components.map((c) => c.map(String)),
    providers: String(await registry.providerCount()),
    hardware: String(await registry.hardwareClassCount()),
  };
}
