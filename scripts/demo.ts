/**
 * npm start: the main job on embedded defaults, with no external service.
 *
 * Starts a local Hardhat chain on 127.0.0.1, deploys the registries, registers a sample provider
 * (with a release-signing key apart from the account that sends transactions), hardware classes
 * and components, publishes a bootloader and a sensor firmware that depends on it, shows that a
 * downgrade is refused, prints what the ledger holds; then runs the firmware server on the embedded
 * IPFS store, submits the artifacts, grants a device its keys and lets it fetch, verify and
 * decrypt one (scripts/lib/demoFirmwareServer.ts). Keeps both up until Ctrl-C.
 * `npm start -- --once` exits after printing.
 */
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { startLocalChain } from "./lib/localChain";
import { deployRegistry } from "./lib/deployRegistry";
import { sampleImage, SampleImage } from "./lib/sampleImage";
import { demoFirmwareServer } from "./lib/demoFirmwareServer";
import { componentId, dependsOn, normalizeRelease, ReleaseRecord } from "../agent/core/release";
import { encodeVersion, formatVersion, formatRange } from "../agent/core/version";
import { registryDomain, signRelease } from "../agent/crypto/releaseSignature";
import { verifyLedgerRelease } from "../agent/chain/verifyLedgerRelease";
import { fetchReleases } from "../agent/chain/releaseEvents";
import { decodeRevert } from "../agent/chain/revertReason";
import type { FleetRegistry, UpdateRegistry } from "../typechain-types";
import { INSTALL_CHECK, RELEASE_STATUS, ledgerName } from "../agent/core/ledgerCodes";
import { findWitnesses } from "../agent/chain/witnesses";

/** "DEPENDENCY_NOT_INSTALLED" -> "dependency not installed" */
const humanCode = (code: string) => code.toLowerCase().replace(/_/g, " ");


async function main() {
  const once = process.argv.includes("--once");
  process.env.HARDHAT_NETWORK = process.env.HARDHAT_NETWORK ?? "localhost";
  const hre: HardhatRuntimeEnvironment = (await import("hardhat")).default;
  await hre.run("compile", { quiet: true });

  const url = new URL((hre.network.config as { url: string }).url);
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") {
    throw new Error(`npm start runs its own chain on 127.0.0.1; OTA_RPC_URL points at ${url.host}. Unset it or use 127.0.0.1`);
  }
  const chain = await startLocalChain({ port: Number(url.port || 8545) });
  let server: { close(): Promise<void> } | undefined;
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  try {
    console.log(`chain        ${chain.url} (Hardhat, chain id 31337)`);
    const story = await runStory(hre);
    const fleet = (await hre.ethers.getContractAt("FleetRegistry", story.deployment.fleetRegistry)) as unknown as FleetRegistry;
    server = await demoFirmwareServer({ ...story, fleet });
    if (!once) {
      console.log("\nThe chain (" + chain.url + ") and the firmware server stay up for agents and wallets. Ctrl-C stops them.");
      await stopped;
      console.log("\nstopping the chain");
    }
  } finally {
    await server?.close();
    await chain.stop();
  }
}

async function runStory(hre: HardhatRuntimeEnvironment) {
  const { ethers } = hre;
  const { deployment, file } = await deployRegistry(hre);
  console.log(`registry     UpdateRegistry ${deployment.updateRegistry}, FleetRegistry ${deployment.fleetRegistry}`);
  console.log(`             addresses written to ${file}`);

  const [admin, author] = await ethers.getSigners();
  const registry = (await ethers.getContractAt("UpdateRegistry", deployment.updateRegistry)) as unknown as UpdateRegistry;
  const domain = registryDomain(deployment.chainId, deployment.updateRegistry);
  // The provider's release-signing key is not the account that sends the transactions: a device
  // checks authorship from the signature, whoever published.
  const releaseKey = new Wallet(keccak256(toUtf8Bytes("OTA Ledger demo: Acme release signing key")));

  const send = async (what: string, tx: Promise<{ wait(): Promise<unknown> }>) => {
    await (await tx).wait();
    console.log(`  ✓ ${what}`);
  };
  console.log("\nadministrator sets up the catalog");
  await send('provider "Acme Devices" (id 1)', registry.connect(admin).registerProvider("Acme Devices"));
  await send(`release-signing key ${releaseKey.address}`, registry.connect(admin).addProviderSigner(1, releaseKey.address));
  await send(`author ${author.address}`, registry.connect(admin).registerAuthor(author.address, 1));
  await send('hardware class "acme-board-rev-a" (id 1)', registry.connect(admin).registerHardwareClass("acme-board-rev-a"));
  await send('hardware class "acme-board-rev-b" (id 2)', registry.connect(admin).registerHardwareClass("acme-board-rev-b"));
  await send('component "acme.bootloader"', registry.connect(admin).registerComponent("acme.bootloader", 1));
  await send('component "acme.sensor-fw"', registry.connect(admin).registerComponent("acme.sensor-fw", 1));

  const images = new Map<string, SampleImage>();
  const release = async (name: string, version: string, size: number, hardware: number[], deps: [string, string][]): Promise<ReleaseRecord> => {
    const image = await sampleImage(`${name}@${version}`, size);
    images.set(image.fileLink, image);
    return normalizeRelease({
      provider: 1,
      component: componentId(name),
      version: encodeVersion(version),
      fileHash: image.fileHash,
      fileLink: image.fileLink,
      fileName: `${name}-${version}.bin`,
      fileSize: BigInt(image.bytes.length),
      merkleRoot: image.merkleRoot,
      hardware,
      dependencies: deps.map(([c, range]) => dependsOn(componentId(c), range)),
    });
  };
  const publish = async (label: string, record: ReleaseRecord) => {
    const witnesses = await findWitnesses(registry, record.dependencies);
    const signature = await signRelease(releaseKey, domain, record);
    const receipt = await (await registry.connect(author).publishRelease(record, releaseKey.address, signature, witnesses)).wait();
    console.log(`  ✓ ${label} (gas ${receipt!.gasUsed})`);
  };

  console.log("\nauthor publishes signed releases");
  await publish("acme.bootloader 1.0.0 for rev-a and rev-b", await release("acme.bootloader", "1.0.0", 200 * 1024, [1, 2], []));
  await publish("acme.sensor-fw 2.0.0, needs acme.bootloader ^1.0.0", await release("acme.sensor-fw", "2.0.0", 600 * 1024, [1, 2], [["acme.bootloader", "^1.0.0"]]));
  await publish("acme.sensor-fw 2.1.0, rev-b only", await release("acme.sensor-fw", "2.1.0", 610 * 1024, [2], [["acme.bootloader", "^1.0.0"]]));

  console.log("\nthe registry refuses what X.1368 forbids");
  const refuse = async (label: string, record: ReleaseRecord) => {
    const signature = await signRelease(releaseKey, domain, record);
    const witnesses = await findWitnesses(registry, record.dependencies);
    try {
      await registry.connect(author).publishRelease.staticCall(record, releaseKey.address, signature, witnesses);
      throw new Error(`${label} was accepted; the registry should have refused it`);
    } catch (err) {
      const parsed = decodeRevert(err, [registry.interface]);
      if (!parsed) throw err;
      console.log(`  ✗ ${label}: ${parsed.name}`);
    }
  };
  await refuse("downgrade acme.sensor-fw to 1.9.0 (REQ-10d-i)", await release("acme.sensor-fw", "1.9.0", 1024, [1], []));
  await refuse("acme.sensor-fw 3.0.0 needing acme.bootloader ^2.0.0, never released (APP-II-2)", await release("acme.sensor-fw", "3.0.0", 1024, [1], [["acme.bootloader", "^2.0.0"]]));

  console.log("\nwhat the ledger holds (Table II-1, rebuilt from ReleasePublished events, checked against storage and signatures)");
  const names = new Map<string, string>();
  for (const n of ["acme.bootloader", "acme.sensor-fw"]) names.set(componentId(n), n);
  const hardwareName = async (id: number) => registry.hardwareClass(id);
  for (const r of await fetchReleases(registry, domain, deployment.deployedAtBlock)) {
    // Against storage, the provider's registered keys and the signing key pinned here.
    const status = await verifyLedgerRelease({ registry, domain }, r, { pinnedSigners: [releaseKey.address] });
    const hardware = await Promise.all(r.record.hardware.map(hardwareName));
    const deps = r.record.dependencies.map((d) => `${names.get(d.component)} ${formatRange({ min: d.minVersion, max: d.maxVersion })}`);
    console.log(`\n  release ${r.id}`);
    const row = (k: string, v: string) => console.log(`    ${k.padEnd(22)}${v}`);
    row("component", `${names.get(r.record.component)}`);
    row("provider name", `${r.providerName} (id ${r.record.provider})`);
    row("release time", `${new Date(r.releasedAt * 1000).toISOString()} (block ${r.blockNumber})`);
    row("version", `${formatVersion(r.record.version)} (encoded 0x${r.record.version.toString(16)})`);
    row("file hash (SHA-256)", r.record.fileHash);
    row("file link (IPFS CID)", r.record.fileLink);
    row("file name", r.record.fileName);
    row("file size", `${r.record.fileSize} bytes`);
    row("supported hardware", hardware.join(", "));
    row("dependencies", deps.length ? deps.join("; ") : "none");
    row("Merkle root", r.record.merkleRoot);
    row("author signature", `${r.signer} (valid, a registered and pinned signing key of the provider)`);
    row("status", ledgerName(RELEASE_STATUS, status));
  }

  console.log("\nwhat a device may install (checkInstallable, from the ledger)");
  const [fw20, fw21] = (await fetchReleases(registry, domain, deployment.deployedAtBlock)).slice(1);
  const boot = (v: string) => ({ component: componentId("acme.bootloader"), version: encodeVersion(v) });
  const cases: [string, ReleaseRecord, number, { component: string; version: bigint }[]][] = [
    ["rev-a device with bootloader 1.0.0 -> sensor-fw 2.0.0", fw20.record, 1, [boot("1.0.0")]],
    ["rev-a device with bootloader 1.0.0 -> sensor-fw 2.1.0", fw21.record, 1, [boot("1.0.0")]],
    ["rev-b device with no bootloader    -> sensor-fw 2.1.0", fw21.record, 2, []],
    ["rev-b device with bootloader 1.0.0 -> sensor-fw 2.1.0", fw21.record, 2, [boot("1.0.0")]],
  ];
  for (const [label, record, hw, installed] of cases) {
    console.log(`  ${label}: ${humanCode(ledgerName(INSTALL_CHECK, await registry.checkInstallable(record, hw, installed)))}`);
  }
  return { registry, domain, deployment, images, admin, author };
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
