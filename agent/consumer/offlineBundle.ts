import { promises as fs } from "node:fs";
import { createReadStream } from "node:fs";
import * as z from "zod";
import { InputError } from "../core/errors";
import type { ReleaseRecord } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { GetProofAnswer } from "../chain/stateProof";
import type { LedgerRelease } from "../chain/releaseEvents";

/**
 * The offline release bundle (issue 19 item 10, docs/device.md "Offline install", ADR 0017): one
 * file a person carries to a device that cannot reach the network. `ota-ledger release export`
 * writes it; `device install --offline` reads it, and believes nothing in it until it checks:
 *
 *   offset      size   field
 *   0           8      magic "OTAOFFL\n"
 *   8           2      format version, big-endian (1)
 *   10          4      manifest length M, big-endian, 2 .. MANIFEST_MAX
 *   14          M      manifest: UTF-8 JSON (OfflineManifest below)
 *   14+M        8      ciphertext length C, big-endian, 1 .. CIPHERTEXT_MAX
 *   22+M        C      the ciphertext: the stored artifact as `release publish` wrote it
 *   22+M+C             end of file (a byte more or less: OFFLINE_BUNDLE_MALFORMED)
 *
 * The manifest holds the ledger record of the release as its ReleasePublished event has it
 * (every Table II-1 field, the provider's name, the release time), the author's signature and
 * signer, the chain id and the registries' addresses, the header of the block the proofs are at,
 * two EIP-1186 eth_getProof answers at that block (the registry's slots: the release, the
 * provider's bar, the signer's registration; the fleet registry's: the device's standing), the
 * device's credential and its wrapped content key. Every length is checked before anything is
 * allocated for it: a declared length over its bound is refused from the 14 or 8 bytes that
 * declare it, and the ciphertext is streamed, never read whole.
 */
export const BUNDLE_MAGIC = Buffer.from("OTAOFFL\n", "latin1");
export const BUNDLE_FORMAT_VERSION = 1;
/** The manifest's bound: about 20 KB is usual (proofs of 3 + 3 slots, a header, a record). */
export const MANIFEST_MAX = 1024 * 1024;
/** The ciphertext's absolute bound (the record's own bound, artifactSize(fileSize), is checked by the device too). */
export const CIPHERTEXT_MAX = 2 ** 40; // 1 TiB
const PREFIX = 14;

/** A bundle that cannot be read as this format: bad magic, version, lengths, JSON or fields. */
export class OfflineBundleRefused extends InputError {}

const hex = (max: number) =>
  z
    .string()
    .regex(/^0x([0-9a-fA-F]{2})*$/, { error: "must be 0x and hex bytes" })
    .max(2 + 2 * max);
const quantity = z.string().regex(/^0x[0-9a-fA-F]{1,64}$/, { error: "must be a hex quantity" });
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be 0x + 64 hex digits" });
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, { error: "must be an address" });
const decimal = z.string().regex(/^[0-9]{1,78}$/, { error: "must be a decimal integer" });
const proofNodes = z.array(hex(1100)).max(64);

const getProof = z.strictObject({
  address,
  balance: quantity,
  codeHash: bytes32,
  nonce: quantity,
  storageHash: bytes32,
  accountProof: proofNodes,
  storageProof: z.array(z.strictObject({ key: hex(32), value: quantity, proof: proofNodes })).max(16),
});

/** The header fields verifyHeader (agent/chain/stateProof.ts) hashes, as eth_getBlockByNumber names them. */
const header = z.strictObject({
  hash: bytes32,
  parentHash: bytes32,
  sha3Uncles: bytes32,
  miner: address,
  stateRoot: bytes32,
  transactionsRoot: bytes32,
  receiptsRoot: bytes32,
  logsBloom: hex(256),
  difficulty: quantity,
  number: quantity,
  gasLimit: quantity,
  gasUsed: quantity,
  timestamp: quantity,
  extraData: hex(1024),
  mixHash: bytes32,
  nonce: hex(8),
  baseFeePerGas: quantity.optional(),
  withdrawalsRoot: bytes32.optional(),
  blobGasUsed: quantity.optional(),
  excessBlobGas: quantity.optional(),
  parentBeaconBlockRoot: bytes32.optional(),
  requestsHash: bytes32.optional(),
});
export const HEADER_FIELD_NAMES = Object.keys(header.shape);

const manifestSchema = z.strictObject({
  format: z.literal("ota-ledger/offline-release"),
  version: z.literal(BUNDLE_FORMAT_VERSION),
  exportedAt: z.number().int().min(0), // unix s, the exporter's clock: informational
  chain: z.strictObject({ chainId: decimal, registry: address, fleet: address }),
  block: header,
  release: z.strictObject({
    id: bytes32,
    providerName: z.string().max(256),
    releasedAt: z.number().int().min(0),
    record: z.strictObject({
      provider: z.number().int().min(0).max(0xffffffff),
      component: bytes32,
      version: decimal,
      fileHash: bytes32,
      fileLink: z.string().max(128),
      fileName: z.string().max(255),
      fileSize: decimal,
      merkleRoot: bytes32,
      hardware: z.array(z.number().int().min(0).max(0xffff)).max(32),
      dependencies: z.array(z.strictObject({ component: bytes32, minVersion: decimal, maxVersion: decimal })).max(16),
    }),
    signer: address,
    signature: hex(4096),
    blockNumber: z.number().int().min(0),
    blockHash: bytes32,
    transactionHash: bytes32,
    logIndex: z.number().int().min(0),
  }),
  device: z.strictObject({
    record: z.strictObject({ id: bytes32, publicKey: hex(33), hardwareClass: z.number().int().min(0).max(0xffff), network: bytes32, region: bytes32 }),
    batchId: z.number().int().min(0),
    proof: z.array(bytes32).max(64),
  }),
  wrappedKey: hex(256),
  proofs: z.strictObject({ registry: getProof, fleet: getProof }),
});

export type OfflineManifest = z.infer<typeof manifestSchema>;
export type BundleHeader = z.infer<typeof header>;

/** What the exporter puts in a bundle (the manifest's fields in their working types). */
export interface BundleContents {
  exportedAt: number;
  chain: { chainId: bigint; registry: string; fleet: string };
  block: Record<string, unknown>; // eth_getBlockByNumber's answer: only the header fields are kept
  release: LedgerRelease;
  device: DeviceCredential;
  wrappedKey: Uint8Array;
  proofs: { registry: GetProofAnswer; fleet: GetProofAnswer };
}

/** The manifest of `c`, checked against the schema the reader applies (a bundle the device would refuse is never written). */
export function manifestOf(c: BundleContents): OfflineManifest {
  const r = c.release.record;
  const block = Object.fromEntries(HEADER_FIELD_NAMES.filter((k) => c.block[k] !== undefined && c.block[k] !== null).map((k) => [k, c.block[k]]));
  const manifest = {
    format: "ota-ledger/offline-release",
    version: BUNDLE_FORMAT_VERSION,
    exportedAt: c.exportedAt,
    chain: { chainId: c.chain.chainId.toString(), registry: c.chain.registry, fleet: c.chain.fleet },
    block,
    release: {
      id: c.release.id,
      providerName: c.release.providerName,
      releasedAt: c.release.releasedAt,
      record: {
        provider: r.provider,
        component: r.component,
        version: r.version.toString(),
        fileHash: r.fileHash,
        fileLink: r.fileLink,
        fileName: r.fileName,
        fileSize: r.fileSize.toString(),
        merkleRoot: r.merkleRoot,
        hardware: r.hardware,
        dependencies: r.dependencies.map((d) => ({ component: d.component, minVersion: d.minVersion.toString(), maxVersion: d.maxVersion.toString() })),
      },
      signer: c.release.signer,
      signature: c.release.signature,
      blockNumber: c.release.blockNumber,
      blockHash: c.release.blockHash,
      transactionHash: c.release.transactionHash,
      logIndex: c.release.logIndex,
    },
    device: c.device,
    wrappedKey: "0x" + Buffer.from(c.wrappedKey).toString("hex"),
    proofs: {
      registry: stripProof(c.proofs.registry),
      fleet: stripProof(c.proofs.fleet),
    },
  };
  return parseManifest(Buffer.from(JSON.stringify(manifest), "utf8"));
}

function stripProof(p: GetProofAnswer): GetProofAnswer {
  return {
    address: p.address,
    balance: p.balance,
    codeHash: p.codeHash,
    nonce: p.nonce,
    storageHash: p.storageHash,
    accountProof: p.accountProof,
    storageProof: p.storageProof.map((s) => ({ key: s.key, value: s.value, proof: s.proof })),
  };
}

/** The bundle's first bytes: magic, version, the manifest's length and the manifest. */
export function bundlePrefix(manifest: OfflineManifest, ciphertextLength: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), "utf8");
  if (json.length > MANIFEST_MAX) throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", `the manifest is ${json.length} bytes, over ${MANIFEST_MAX}`);
  if (ciphertextLength < 1n || ciphertextLength > BigInt(CIPHERTEXT_MAX))
    throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", `a ciphertext of ${ciphertextLength} bytes does not fit a bundle (1 .. ${CIPHERTEXT_MAX})`);
  const head = Buffer.alloc(PREFIX);
  BUNDLE_MAGIC.copy(head, 0);
  head.writeUInt16BE(BUNDLE_FORMAT_VERSION, 8);
  head.writeUInt32BE(json.length, 10);
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(ciphertextLength);
  return Buffer.concat([head, json, length]);
}

/** Writes a bundle: the prefix, then the ciphertext copied from `artifactFile`. Returns the bundle's size. */
export async function writeBundle(file: string, manifest: OfflineManifest, artifactFile: string): Promise<number> {
  const size = BigInt((await fs.stat(artifactFile)).size);
  const prefix = bundlePrefix(manifest, size);
  const out = await fs.open(file, "wx", 0o644);
  try {
    await out.write(prefix);
    for await (const chunk of createReadStream(artifactFile)) await out.write(chunk as Buffer);
    await out.sync();
  } catch (err) {
    await out.close();
    await fs.rm(file, { force: true });
    throw err;
  }
  await out.close();
  return prefix.length + Number(size);
}

/** A bundle read and its manifest checked for form (nothing in it is trusted yet). */
export interface OpenedBundle {
  file: string;
  manifest: OfflineManifest;
  release: LedgerRelease;
  device: DeviceCredential;
  wrappedKey: Buffer;
  /** Where the ciphertext starts in the file, and its length. */
  ciphertext: { offset: number; length: number };
  /** The ciphertext, streamed from the file. */
  readCiphertext(): AsyncIterable<Uint8Array>;
}

/** Reads a bundle's framing and manifest within their bounds (OFFLINE_BUNDLE_MALFORMED otherwise); the ciphertext stays in the file. */
export async function openBundle(file: string): Promise<OpenedBundle> {
  const bad = (why: string): never => {
    throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", `${file} is not an offline release bundle: ${why}`);
  };
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, "r");
  } catch (cause) {
    throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
      cause,
    });
  }
  try {
    const size = (await fh.stat()).size;
    const readAt = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, position);
      if (bytesRead !== length) bad(`it ends at byte ${position + bytesRead}, inside a field of ${length} bytes at ${position}`);
      return buf;
    };
    if (size < PREFIX) bad(`it is ${size} bytes, shorter than the ${PREFIX}-byte header`);
    const head = await readAt(0, PREFIX);
    if (!head.subarray(0, 8).equals(BUNDLE_MAGIC)) bad("its first bytes are not the magic OTAOFFL");
    const version = head.readUInt16BE(8);
    if (version !== BUNDLE_FORMAT_VERSION) bad(`its format version is ${version}; this agent reads version ${BUNDLE_FORMAT_VERSION}`);
    const m = head.readUInt32BE(10);
    // Checked before the manifest is allocated: a declared length is never trusted for memory.
    if (m < 2 || m > MANIFEST_MAX) bad(`it declares a manifest of ${m} bytes (bound ${MANIFEST_MAX})`);
    if (PREFIX + m + 8 > size) bad(`it declares a manifest of ${m} bytes but is ${size} bytes long`);
    const manifest = parseManifest(await readAt(PREFIX, m));
    const c = (await readAt(PREFIX + m, 8)).readBigUInt64BE();
    if (c < 1n || c > BigInt(CIPHERTEXT_MAX)) bad(`it declares a ciphertext of ${c} bytes (bound ${CIPHERTEXT_MAX})`);
    const offset = PREFIX + m + 8;
    if (BigInt(offset) + c !== BigInt(size)) bad(`it declares ${c} bytes of ciphertext, but ${size - offset} follow the manifest`);
    const length = Number(c);
    return {
      file,
      manifest,
      release: releaseOf(manifest),
      device: manifest.device,
      wrappedKey: Buffer.from(manifest.wrappedKey.slice(2), "hex"),
      ciphertext: { offset, length },
      readCiphertext: () => createReadStream(file, { start: offset, end: offset + length - 1 }),
    };
  } finally {
    await fh.close();
  }
}

/** The manifest's JSON checked against the format (OFFLINE_BUNDLE_MALFORMED, naming the first field that is wrong). */
export function parseManifest(json: Buffer): OfflineManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString("utf8"));
  } catch {
    throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", "the bundle's manifest is not JSON");
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OfflineBundleRefused("OFFLINE_BUNDLE_MALFORMED", `the bundle's manifest: ${issue.path.join(".") || "(top)"} ${issue.message}`);
  }
  return parsed.data;
}

/** The release as the manifest states it, in the working types (checked against the ledger by the device, not here). */
export function releaseOf(m: OfflineManifest): LedgerRelease {
  const r = m.release.record;
  const record: ReleaseRecord = {
    provider: r.provider,
    component: r.component,
    version: BigInt(r.version),
    fileHash: r.fileHash,
    fileLink: r.fileLink,
    fileName: r.fileName,
    fileSize: BigInt(r.fileSize),
    merkleRoot: r.merkleRoot,
    hardware: r.hardware,
    dependencies: r.dependencies.map((d) => ({ component: d.component, minVersion: BigInt(d.minVersion), maxVersion: BigInt(d.maxVersion) })),
  };
  return {
    id: m.release.id,
    providerName: m.release.providerName,
    releasedAt: m.release.releasedAt,
    record,
    signer: m.release.signer,
    signature: m.release.signature,
    blockNumber: m.release.blockNumber,
    blockHash: m.release.blockHash,
    transactionHash: m.release.transactionHash,
    logIndex: m.release.logIndex,
  };
}
