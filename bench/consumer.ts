/**
 * The firmware consumer end to end on this machine: a device agent takes a release of a 256 MiB
 * image from the firmware server (embedded IPFS store, 127.0.0.1): ledger checks, download with
 * every chunk verified against the ledger's root, key unwrap, decryption into the inactive slot
 * with the plaintext hash checked, trial boot (the slot re-hashed) and confirmation. Printed
 * beside the OpenSSL ceiling measured in the same run, with peak memory.
 *
 *   npm run bench:consumer                          256 MiB image
 *   BENCH_SIZE_MIB=64 npm run bench:consumer        another size in MiB
 *   BENCH_JSON=1 npm run bench:consumer             JSON
 *
 * Runs on Hardhat's in-process chain (`hardhat run`, which passes no arguments), so it needs no
 * node; the firmware server runs in this process too, so its reads share the device's core.
 */
import { ethers } from "hardhat";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import type { FleetRegistry, UpdateRegistry } from "../typechain-types";
import { registryDomain } from "../agent/crypto/releaseSignature";
import { EmbeddedStore } from "../agent/storage/embeddedStore";
import { ServerDatabase } from "../agent/server/serverDatabase";
import { LedgerGate } from "../agent/server/ledgerGate";
import { startFirmwareServer } from "../agent/server/firmwareServer";
import { ContentKeyStore } from "../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared } from "../agent/author/publishRelease";
import { uploadArtifact } from "../agent/author/uploadArtifact";
import { grantKeys } from "../agent/author/grantKeys";
import { DeviceAgent } from "../agent/consumer/deviceAgent";
import { componentId } from "../agent/core/release";
import { opensslMBps, peakRssMiB } from "./lib/measure";

const MiB = 1024 * 1024;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

async function main() {
  const json = process.argv.includes("--json") || process.env.BENCH_JSON === "1";
  const size = arg("--size", Number(process.env.BENCH_SIZE_MIB ?? 256)) * MiB;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-bench-consumer-"));
  const [admin, author] = await ethers.getSigners();
  const registry = (await ethers.deployContract("UpdateRegistry", [3 * 24 * 3600, admin.address])) as unknown as UpdateRegistry;
  const fleet = (await ethers.deployContract("FleetRegistry", [await registry.getAddress()])) as unknown as FleetRegistry;
  const domain = registryDomain((await ethers.provider.getNetwork()).chainId, await registry.getAddress());
  await (await registry.registerProvider("Bench")).wait();
  await (await registry.addProviderSigner(1, author.address)).wait();
  await (await registry.registerAuthor(author.address, 1)).wait();
  await (await registry.registerHardwareClass("bench-board")).wait();
  await (await registry.registerComponent("bench.firmware", 1)).wait();
  const deviceKey = Wallet.createRandom();
  const record = {
    id: keccak256(toUtf8Bytes("bench device")),
    publicKey: deviceKey.signingKey.compressedPublicKey,
    hardwareClass: 1,
    network: encodeBytes32String("bench"),
    region: encodeBytes32String("bench"),
  };
  await (await fleet.enrolDevice(record)).wait();

  const store = await EmbeddedStore.open({ directory: path.join(dir, "ipfs") });
  const db = new ServerDatabase(path.join(dir, "server.db"));
  const server = await startFirmwareServer({ gate: new LedgerGate(registry, fleet, domain), store, db });
  try {
    // The author's side, not measured: a random image, packaged, published, submitted, granted.
    const image = path.join(dir, "image.bin");
    const handle = await fs.open(image, "w");
    const block = randomBytes(MiB);
    for (let o = 0; o < size; o += MiB) await handle.write(block, 0, Math.min(MiB, size - o));
    await handle.close();
    const keys = new ContentKeyStore(path.join(dir, "keys"));
    const prepared = await prepareRelease(
      { registry, domain, sender: author, releaseSigner: author },
      { component: "bench.firmware", version: "1.0.0", file: image, hardware: ["1"], depends: [] },
      dir,
    );
    await publishPrepared({ registry, sender: author, keys }, prepared);
    await uploadArtifact({ serverUrl: server.url, author }, prepared.releaseId, prepared.artifactFile);
    await grantKeys({ registry, fleet, domain, author, keys, serverUrl: server.url }, prepared.releaseId, { deviceIds: [record.id] });
    await fs.rm(image);
    await fs.rm(prepared.artifactFile);

    const baseline = peakRssMiB();
    const phases: Record<string, number> = {};
    let mark = process.hrtime.bigint();
    const agent = await DeviceAgent.open({
      dataDir: path.join(dir, "device"),
      device: { privateKey: deviceKey.privateKey, credential: { record, batchId: 0, proof: [] } },
      serverUrl: server.url,
      chain: { provider: ethers.provider, registry, fleet, domain, fromBlock: 0 },
      components: [componentId("bench.firmware")],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async () => true,
      onPhase: (phase) => {
        const now = process.hrtime.bigint();
        phases[phase] = Number(now - mark) / 1e9;
        mark = now;
      },
    });
    const started = process.hrtime.bigint();
    mark = started;
    const outcome = await agent.considerRelease(prepared.releaseId, "bench");
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (outcome.outcome !== "confirmed") throw new Error(`the device did not confirm the release: ${outcome.code}`);

    const aes = opensslMBps("aes-256-gcm");
    const sha = opensslMBps("sha256");
    // Per byte: one AES-GCM pass and three SHA-256 passes (chunk leaf on arrival, plaintext hash
    // into the slot, the slot re-hashed at the trial boot).
    const ceiling = aes && sha ? 1 / (1 / aes + 3 / sha) : null;
    const mbps = (s: number) => Number((size / MiB / s).toFixed(1));
    const figures = {
      imageMiB: size / MiB,
      "end to end (checks, download+verify, decrypt+install, trial, confirm) MiB/s": mbps(seconds),
      "download + per-chunk verification s": Number((phases.downloaded ?? 0).toFixed(2)),
      "key unwrap + decrypt into the slot + hash s": Number(((phases.decrypted ?? 0) + (phases.installing ?? 0)).toFixed(2)),
      "trial boot (slot re-hashed) + confirm s": Number(((phases.trial ?? 0) + (phases.confirmed ?? 0)).toFixed(2)),
      "openssl aes-256-gcm MiB/s": aes && Number(aes.toFixed(1)),
      "openssl sha256 MiB/s": sha && Number(sha.toFixed(1)),
      "openssl ceiling for aes + 3 x sha256 MiB/s": ceiling && Number(ceiling.toFixed(1)),
      "end to end / ceiling": ceiling && Number((mbps(seconds) / ceiling).toFixed(2)),
      "peak RSS MiB before the device": baseline,
      "peak RSS MiB after the device": peakRssMiB(),
    };
    if (json) console.log(JSON.stringify(figures, null, 2));
    else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(76)} ${v}`);
  } finally {
    await server.close();
    await store.close();
    db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
