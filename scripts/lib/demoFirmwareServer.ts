import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { encodeBytes32String, keccak256, toUtf8Bytes, Wallet, type Signer, type TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdateRegistry } from "../../typechain-types";
import type { Deployment } from "../../agent/chain/deployment";
import { fetchReleases } from "../../agent/chain/releaseEvents";
import { ContentKeyStore } from "../../agent/author/contentKeyStore";
import { uploadArtifact } from "../../agent/author/uploadArtifact";
import { grantKeys } from "../../agent/author/grantKeys";
import { downloadArtifact, decryptDownloaded, DeviceIdentity } from "../../agent/consumer/downloadRelease";
import { EmbeddedStore } from "../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../agent/server/serverDatabase";
import { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../agent/server/firmwareServer";
import type { SampleImage } from "./sampleImage";

/**
 * The demo's second act (X.1368 11.3): the firmware server on the embedded IPFS store (a
 * temporary folder, removed at the end), the author's submissions screened against the ledger,
 * keys granted to an enrolled device, and that device fetching, verifying and decrypting a
 * release; an unenrolled device is refused.
 */
export async function demoFirmwareServer(s: {
  registry: UpdateRegistry;
  fleet: FleetRegistry;
  domain: TypedDataDomain;
  deployment: Deployment;
  images: Map<string, SampleImage>;
  admin: Signer & { address: string };
  author: Signer & { address: string; signMessage(m: string): Promise<string> };
}): Promise<{ close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ota-ledger-demo-"));
  const store = await EmbeddedStore.open({ directory: path.join(dir, "ipfs") });
  const db = new ServerDatabase(path.join(dir, "server.db"));
  const server = await startFirmwareServer({ gate: new LedgerGate(s.registry, s.fleet, s.domain, s.deployment.deployedAtBlock), store, db });
  const close = async () => {
    await server.close();
    await store.close();
    db.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    console.log(`\nfirmware server ${server.url} (embedded IPFS store in ${dir})`);
    const keys = new ContentKeyStore(path.join(dir, "author-keys"));
    const releases = await fetchReleases(s.registry, s.domain, s.deployment.deployedAtBlock);
    for (const r of releases) {
      const image = s.images.get(r.record.fileLink)!;
      const file = path.join(dir, `${r.record.fileName}.otae`);
      await writeFile(file, image.artifact);
      await keys.save(r.id, image.contentKey);
      const { cid } = await uploadArtifact(server.url, r.id, file);
      console.log(`  ✓ ${r.record.fileName} submitted: CID, size and Merkle root match the ledger (CAP-11.3-a), pinned ${cid}`);
    }

    const deviceKey = new Wallet(keccak256(toUtf8Bytes("OTA Ledger demo: device rev-b-0001")));
    const device: DeviceIdentity = {
      privateKey: deviceKey.privateKey,
      credential: {
        record: { id: keccak256(toUtf8Bytes("rev-b-0001")), publicKey: deviceKey.signingKey.compressedPublicKey, hardwareClass: 2, network: encodeBytes32String("plant-1"), region: encodeBytes32String("eu-west") },
        batchId: 0,
        proof: [],
      },
    };
    await (await s.fleet.connect(s.admin).enrolDevice(device.credential.record)).wait();
    console.log(`  ✓ administrator enrols device rev-b-0001 (${device.credential.record.id.slice(0, 10)}…, hardware acme-board-rev-b)`);
    const bootloader = releases[0];
    await grantKeys({ registry: s.registry, fleet: s.fleet, domain: s.domain, author: s.author, keys, serverUrl: server.url }, bootloader.id, { deviceIds: [device.credential.record.id] });
    console.log(`  ✓ author grants ${bootloader.record.fileName}'s content key to rev-b-0001 (wrapped for its public key; the server never sees it)`);

    const artifactFile = path.join(dir, "device-download.otae");
    const imageFile = path.join(dir, "device-image.bin");
    const { wrappedKey } = await downloadArtifact({ serverUrl: server.url, device, installed: [], release: bootloader, artifactFile });
    const { fileHash } = await decryptDownloaded({ device, release: bootloader, artifactFile, imageFile, wrappedKey });
    console.log(`  ✓ rev-b-0001 fetched ${bootloader.record.fileName}: every chunk matched the ledger's Merkle root, key unwrapped, plaintext SHA-256 ${fileHash.slice(0, 18)}… = ledger`);

    const strangerKey = new Wallet(keccak256(toUtf8Bytes("OTA Ledger demo: unenrolled device")));
    const stranger: DeviceIdentity = { privateKey: strangerKey.privateKey, credential: { ...device.credential, record: { ...device.credential.record, id: keccak256(toUtf8Bytes("stranger")), publicKey: strangerKey.signingKey.compressedPublicKey } } };
    try {
      await downloadArtifact({ serverUrl: server.url, device: stranger, installed: [], release: bootloader, artifactFile: path.join(dir, "stranger.otae") });
      throw new Error("the server served an unenrolled device");
    } catch (err) {
      console.log(`  ✗ an unenrolled device asks for it: ${(err as { code?: string }).code} (PROC-4)`);
    }
    return { close };
  } catch (err) {
    await close();
    throw err;
  }
}
