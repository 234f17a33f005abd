import { NonceManager, Wallet, ZeroHash, keccak256, toUtf8Bytes, type Signer } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { deployRegistry } from "../lib/deployRegistry";
import { registryDomain } from "../../agent/crypto/releaseSignature";
import type { Deployment } from "../../agent/chain/deployment";
import {
  FleetRegistry__factory,
  StagedRollout__factory,
  StatusAnchors__factory,
  UpdatePolicies__factory,
  UpdateRegistry__factory,
  type FleetRegistry,
  type StagedRollout,
  type StatusAnchors,
  type UpdatePolicies,
  type UpdateRegistry,
} from "../../typechain-types";
import type { StoryLog } from "./storyLog";

export const HARDWARE = ["acme-board-rev-a", "acme-board-rev-b", "acme-board-rev-c"] as const;
export const BOOTLOADER = "acme.bootloader";
export const FIRMWARE = "acme.sensor-fw";

/** Everyone who acts on the ledger in the story, each with their own account. */
export interface Actors {
  admin: Signer & { address: string };
  author: Signer & { address: string };
  auditor: Signer & { address: string };
  /** The account the status tracker sends with (TRACKER_ROLE): module registrations, failure totals, anchors. */
  trackerOperator: Signer & { address: string };
  /** The provider's release-signing key: not an account that sends transactions. */
  releaseKey: Wallet;
}

export interface TrackerModuleKey {
  id: string;
  label: string;
  privateKey: string;
  publicKey: string;
}

export interface DemoLedger {
  hre: HardhatRuntimeEnvironment;
  deployment: Deployment;
  deploymentFile: string;
  domain: ReturnType<typeof registryDomain>;
  registry: UpdateRegistry;
  fleet: FleetRegistry;
  policies: UpdatePolicies;
  anchors: StatusAnchors;
  rollout: StagedRollout;
  actors: Actors;
  /** The server module (it decides) and the gateway of the second network (an intermediate module). */
  modules: { server: TrackerModuleKey; gateway: TrackerModuleKey };
}

/** A signer whose nonces are counted here: ethers answers an identical nonce query from a short cache. */
function counted(signer: Signer & { address: string }): Signer & { address: string } {
  return Object.assign(new NonceManager(signer), { address: signer.address });
}

/**
 * Act 1: deploys the registry, UpdatePolicies and StatusAnchors (the Ignition module), sets up the
 * catalog (a provider with its signing key and author, three hardware classes, two components),
 * gives the auditor and the tracker operator their roles, registers the two tracker modules, and
 * deploys a StagedRollout policy (attached to the firmware once the fleet runs its factory image).
 */
export async function setUpLedger(hre: HardhatRuntimeEnvironment, log: StoryLog): Promise<DemoLedger> {
  const { deployment, file } = await deployRegistry(hre);
  log.note(`UpdateRegistry ${deployment.updateRegistry}, FleetRegistry ${deployment.fleetRegistry}`);
  log.note(`UpdatePolicies ${deployment.updatePolicies}, StatusAnchors ${deployment.statusAnchors}`);
  log.note(`addresses written to ${file}`);

  const [a, b, c, d] = await hre.ethers.getSigners();
  const actors: Actors = {
    admin: counted(a),
    author: counted(b),
    auditor: counted(c),
    trackerOperator: counted(d),
    releaseKey: new Wallet(keccak256(toUtf8Bytes("OTA Ledger demo: Acme release signing key"))),
  };
  const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, hre.ethers.provider);
  const fleet = FleetRegistry__factory.connect(deployment.fleetRegistry, hre.ethers.provider);
  const policies = UpdatePolicies__factory.connect(deployment.updatePolicies!, hre.ethers.provider);
  const anchors = StatusAnchors__factory.connect(deployment.statusAnchors!, hre.ethers.provider);
  const send = async (what: string, tx: Promise<{ wait(): Promise<unknown> }>) => {
    await (await tx).wait();
    log.note(`✓ ${what}`);
  };

  const admin = registry.connect(actors.admin);
  await send('provider "Acme Devices" (id 1)', admin.registerProvider("Acme Devices"));
  await send(`its release-signing key ${actors.releaseKey.address}`, admin.addProviderSigner(1, actors.releaseKey.address));
  await send(`author ${actors.author.address}`, admin.registerAuthor(actors.author.address, 1));
  for (const [i, name] of HARDWARE.entries()) await send(`hardware class "${name}" (id ${i + 1})`, admin.registerHardwareClass(name));
  await send(`component "${BOOTLOADER}"`, admin.registerComponent(BOOTLOADER, 1));
  await send(`component "${FIRMWARE}"`, admin.registerComponent(FIRMWARE, 1));
  await send(
    `auditor ${actors.auditor.address} (AUDITOR_ROLE: revokes and flags releases)`,
    admin.grantRole(await registry.AUDITOR_ROLE(), actors.auditor.address),
  );
  await send(
    `tracker operator ${actors.trackerOperator.address} (TRACKER_ROLE)`,
    admin.grantRole(await registry.TRACKER_ROLE(), actors.trackerOperator.address),
  );

  const moduleKey = (label: string): TrackerModuleKey => {
    const key = new Wallet(keccak256(toUtf8Bytes(`OTA Ledger demo: tracker module ${label}`)));
    return { id: keccak256(toUtf8Bytes(`tracker ${label}`)), label, privateKey: key.privateKey, publicKey: key.signingKey.compressedPublicKey };
  };
  const modules = { server: moduleKey("hq"), gateway: moduleKey("plant-2 gateway") };
  const operatorFleet = fleet.connect(actors.trackerOperator);
  await send(
    `tracker server module "hq"`,
    operatorFleet.registerTrackerModule(modules.server.id, new Wallet(modules.server.privateKey).address, modules.server.publicKey, ZeroHash),
  );
  await send(
    `intermediate module "plant-2 gateway" under "hq" (APP-II-4)`,
    operatorFleet.registerTrackerModule(modules.gateway.id, new Wallet(modules.gateway.privateKey).address, modules.gateway.publicKey, modules.server.id),
  );

  const rollout = await new StagedRollout__factory(actors.admin).deploy(deployment.updateRegistry, deployment.fleetRegistry);
  await rollout.waitForDeployment();
  log.note(`✓ StagedRollout policy deployed at ${await rollout.getAddress()}`);

  return {
    hre,
    deployment,
    deploymentFile: file,
    domain: registryDomain(deployment.chainId, deployment.updateRegistry),
    registry,
    fleet,
    policies,
    anchors,
    rollout: rollout.connect(hre.ethers.provider) as StagedRollout,
    actors,
    modules,
  };
}
