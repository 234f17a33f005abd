import { writeFile } from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { newContentKey } from "../../agent/crypto/artifactCipher";
import { packageArtifact } from "../../agent/author/packageArtifact";
import { readyRelease } from "../../agent/author/readyRelease";
import { ContentKeyStore } from "../../agent/author/contentKeyStore";
import { componentId, dependsOn, normalizeRelease, type ReleaseRecord } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { computeReleaseId, signRelease } from "../../agent/crypto/releaseSignature";
import { findWitnesses } from "../../agent/chain/witnesses";
import type { DeviceCredential } from "../../agent/crypto/deviceCredential";
import type { ContractTransactionReceipt } from "ethers";
import { HARDWARE, type DemoLedger } from "./ledgerSetup";

/** The first bytes of an image whose self-test passes on the board (see simulatedFleet's selfTest). */
export const SELF_TEST_PASS = "OTA-DEMO-SELFTEST:PASS\n";
const SELF_TEST_FAIL = "OTA-DEMO-SELFTEST:FAIL\n";

export interface SampleRelease {
  id: string;
  label: string; // "acme.sensor-fw 2.0.0"
  record: ReleaseRecord;
  gasUsed: bigint;
}

/**
 * The author's tool, as the CLI's `release publish` runs it, on a deterministic sample image:
 * packages (encrypts, hashes, chunk Merkle root, CID), signs with the provider's release key,
 * submits the artifact to the firmware server with the signed record (checked there against it and
 * kept prepared, unserved), grants the content key to every eligible enrolled device, and only
 * then publishes on the ledger (issue 17): a device that hears the release finds both at once.
 *
 * For other users (bench/e2e.ts; the demo leaves them unset): `credentials` adds batch-enrolled
 * devices to the grant (the ledger holds only their batch's root), and `onPublished` hears the
 * publish transaction's receipt the moment it comes back (the artifact and the keys are already
 * on the server by then).
 */
export async function publishSample(
  l: DemoLedger,
  o: {
    component: string;
    version: string;
    size: number;
    hardware: number[];
    depends?: [string, string][];
    selfTestPasses?: boolean;
    credentials?: DeviceCredential[];
    onPublished?: (receipt: ContractTransactionReceipt) => void;
  },
  where: { dir: string; serverUrl: string },
): Promise<SampleRelease> {
  const label = `${o.component} ${o.version}`;
  const bytes = imageBytes(label, o.size, o.selfTestPasses ?? true);
  const contentKey = newContentKey();
  const stored: Buffer[] = [];
  const packaged = await packageArtifact(contentKey, [bytes], { plaintextSize: BigInt(bytes.length), sink: (c) => void stored.push(c) });
  const record = normalizeRelease({
    provider: 1,
    component: componentId(o.component),
    version: encodeVersion(o.version),
    fileHash: packaged.fileHash,
    fileLink: packaged.fileLink,
    fileName: `${o.component}-${o.version}.bin`,
    fileSize: BigInt(bytes.length),
    merkleRoot: packaged.merkleRoot,
    hardware: o.hardware,
    dependencies: (o.depends ?? []).map(([c, range]) => dependsOn(componentId(c), range)),
  });
  const { author, releaseKey } = l.actors;
  const signature = await signRelease(releaseKey, l.domain, record);
  const id = computeReleaseId(l.domain, record).toLowerCase();
  const artifactFile = path.join(where.dir, `${record.fileName}.otae`);
  await writeFile(artifactFile, Buffer.concat(stored));
  const keys = new ContentKeyStore(path.join(where.dir, "author-keys"));
  const ready = await readyRelease(
    { registry: l.registry, fleet: l.fleet, domain: l.domain, author, keys, serverUrl: where.serverUrl, fromBlock: l.deployment.deployedAtBlock },
    { releaseId: id, record, signature, signer: releaseKey.address, artifactFile, contentKey },
    { grant: { allEligible: true, credentials: o.credentials } },
  );
  if (!ready.ready) throw ready.refusal; // the demo's server takes prepared releases
  const witnesses = await findWitnesses(l.registry, record.dependencies);
  const receipt = await (await l.registry.connect(author).publishRelease(record, releaseKey.address, signature, witnesses)).wait();
  o.onPublished?.(receipt!);
  return { id, label, record, gasUsed: receipt!.gasUsed };
}

/** "rev-a, rev-b" for hardware ids. */
export function hardwareNames(ids: number[]): string {
  return ids.map((h) => HARDWARE[h - 1].replace("acme-board-", "")).join(", ");
}

/** A deterministic image: the self-test marker, then bytes derived from the label. */
function imageBytes(label: string, size: number, passes: boolean): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(Buffer.from(passes ? SELF_TEST_PASS : SELF_TEST_FAIL, "latin1"));
  for (let offset = SELF_TEST_PASS.length, counter = 0; offset < size; counter++) {
    const block = createHash("sha256").update(`${label}:${counter}`).digest();
    bytes.set(block.subarray(0, Math.min(block.length, size - offset)), offset);
    offset += block.length;
  }
  return bytes;
}
