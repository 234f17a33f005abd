import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import type { Signer, TransactionReceipt, TypedDataDomain } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { InputError } from "../core/errors";
import { componentId, dependsOn, normalizeRelease, ReleaseRecord } from "../core/release";
import { encodeVersion, formatVersion } from "../core/version";
import { newContentKey } from "../crypto/artifactCipher";
import { computeReleaseId, signRelease } from "../crypto/releaseSignature";
import { decodeRevert } from "../chain/revertReason";
import { findWitnesses } from "../chain/witnesses";
import { listHardwareClasses, resolveHardwareClass } from "../chain/hardwareClasses";
import { packageArtifact } from "./packageArtifact";
import type { ContentKeyStore } from "./contentKeyStore";
import { explainRefusedPublish, isContractRefusal } from "./publishRefusal";
import { minedWithin } from "../chain/minedWithin";

export interface ReleaseRequest {
  component: string; // component name
  version: string; // semantic version
  file: string; // path of the plaintext image
  hardware: string[]; // hardware class names or ids
  depends: string[]; // "<component> <range>", e.g. "acme.bootloader >=1.0.0 <2.0.0"
  fileName?: string; // defaults to the file's base name
}

export interface PreparedRelease {
  record: ReleaseRecord;
  releaseId: string;
  signature: string;
  signer: string;
  witnesses: string[];
  artifactFile: string;
  contentKey: Buffer;
  preparedAtBlock: number; // the head when the checks began: a release that takes the version comes after it
}

export type Progress = (stage: "package", done: bigint, total: bigint) => void;

/**
 * The author's tool, up to the transaction (REQ-10f-i): checks the request against the ledger
 * (component owned by the author's provider, provider not barred, the release signer registered
 * for it, version above the latest, hardware registered, dependencies satisfiable), then in one pass hashes, encrypts with a fresh content key and
 * computes the chunk Merkle root and the CID, writing the artifact to `artifactFile`; signs the
 * record (EIP-712) and checks that the registry would accept it (a static call).
 */
export async function prepareRelease(
  deps: { registry: UpdateRegistry; domain: TypedDataDomain; sender: Signer; releaseSigner: Signer },
  req: ReleaseRequest,
  artifactDir: string,
  progress?: Progress,
): Promise<PreparedRelease> {
  const { registry, domain, sender, releaseSigner } = deps;
  const component = componentId(req.component);
  const version = encodeVersion(req.version);
  const senderAddress = await sender.getAddress();
  const chain = registry.runner?.provider ?? sender.provider;
  if (!chain) throw new InputError("NO_PROVIDER", "the registry and the sender are not connected to a chain");
  const preparedAtBlock = await chain.getBlockNumber();
  const providerId = Number(await registry.authorProvider(senderAddress));
  if (providerId === 0)
    throw new InputError(
      "NOT_AN_AUTHOR",
      `${senderAddress} is not an author of any provider: ask an administrator to run \`ota-ledger provider author add ${senderAddress} --provider <id>\``,
    );
  const [, owner, latest] = await registry.component(component).catch((err: unknown) => {
    if (decodeRevert(err, [registry.interface])?.name === "UpdateRegistryUnknownComponent") {
      throw new InputError(
        "UNKNOWN_COMPONENT",
        `component "${req.component}" is not registered: run \`ota-ledger component register ${req.component} --provider ${providerId}\``,
      );
    }
    throw err;
  });
  if (Number(owner) !== providerId)
    throw new InputError("NOT_OWNER", `component "${req.component}" belongs to provider ${owner}, not to ${senderAddress}'s provider ${providerId}`);
  // Asked before the image is packaged, so that a bar or a wrong key costs no encryption pass.
  const [, barred] = (await registry.getFunction("provider")(providerId)) as [string, boolean];
  if (barred)
    throw new InputError(
      "PROVIDER_BARRED",
      `provider ${providerId} is barred on the ledger: nothing can be published for it until an administrator lifts the bar (\`ota-ledger provider unbar ${providerId}\`)`,
    );
  const signerAddress = await releaseSigner.getAddress();
  if (!(await registry.isProviderSigner(providerId, signerAddress))) {
    throw new InputError(
      "SIGNER_NOT_REGISTERED",
      `${signerAddress} is not a release-signing key of provider ${providerId}: sign with the provider's key (--signer-key-file), or ask an administrator to run \`ota-ledger provider signer add ${providerId} ${signerAddress}\``,
    );
  }
  if (latest !== 0n && version <= latest) {
    throw new InputError(
      "VERSION_NOT_GREATER",
      `version ${req.version} is not greater than the latest published ${formatVersion(latest)} of ${req.component}: choose a higher version (REQ-10d-i)`,
    );
  }
  const hardware = await resolveHardware(registry, req.hardware);
  const dependencies = req.depends.map(parseDependency);
  // Asked once, before the image is packaged; kept by component for the record's sorted order.
  const witnessOf = new Map<string, string>();
  for (const [i, witness] of (await findWitnesses(registry, dependencies)).entries()) {
    if (BigInt(witness) === 0n)
      throw new InputError("DEPENDENCY_UNSATISFIED", `no published, unrevoked release satisfies "${req.depends[i]}": publish it first or widen the range`);
    witnessOf.set(dependencies[i].component.toLowerCase(), witness);
  }

  let stat;
  try {
    stat = await fs.stat(req.file);
  } catch {
    throw new InputError("FILE_MISSING", `cannot read the image ${req.file}: check --file`);
  }
  if (!stat.isFile() || stat.size === 0) throw new InputError("FILE_EMPTY", `${req.file} is not a non-empty file`);
  const plaintextSize = BigInt(stat.size);
  const contentKey = newContentKey();
  await fs.mkdir(artifactDir, { recursive: true });
  const artifactFile = path.join(artifactDir, `${req.component}-${req.version}.otae`);
  const out = await fs.open(artifactFile, "w", 0o644);
  let hashed = 0n;
  let packaged;
  try {
    const image = (async function* () {
      for await (const piece of createReadStream(req.file, { highWaterMark: 1024 * 1024 })) {
        hashed += BigInt(piece.length);
        progress?.("package", hashed, plaintextSize);
        yield piece as Buffer;
      }
    })();
    packaged = await packageArtifact(contentKey, image, { plaintextSize, sink: async (chunk) => void (await out.write(chunk)) });
    await out.sync();
  } finally {
    await out.close();
  }
  const record = normalizeRelease({
    provider: providerId,
    component,
    version,
    fileHash: packaged.fileHash,
    fileLink: packaged.fileLink,
    fileName: req.fileName ?? path.basename(req.file),
    fileSize: plaintextSize,
    merkleRoot: packaged.merkleRoot,
    hardware,
    dependencies,
  });
  const witnesses = record.dependencies.map((d) => witnessOf.get(d.component.toLowerCase())!);
  const signature = await signRelease(releaseSigner, domain, record);
  // The registry's verdict before anything is paid for: a refusal here is a decoded custom error.
  await registry
    .connect(sender)
    .publishRelease.staticCall(record, signerAddress, signature, witnesses)
    .catch((err: unknown) => {
      // With our own key the signature always recovers: this is a contract signer (ERC-1271) saying no.
      if (decodeRevert(err, [registry.interface])?.name === "UpdateRegistryInvalidSignature") {
        throw new InputError(
          "SIGNATURE_REFUSED",
          `the contract signer ${signerAddress} does not vouch for this signature (ERC-1271 isValidSignature): sign with a key the contract accepts (--signer-key-file)`,
        );
      }
      throw err;
    });
  return { record, releaseId: computeReleaseId(domain, record), signature, signer: signerAddress, witnesses, artifactFile, contentKey, preparedAtBlock };
}

/**
 * Saves the content key, then sends the publishing transaction. Returns the gas used. If the
 * registry refuses it after all (its state changed since the checks: another author's release of
 * the same version came first, in the same block or just before), the error says why, as the
 * registry now tells (VERSION_TAKEN and the release that took the version, PROVIDER_BARRED...), and
 * the content key and artifact saved for the release that does not exist are removed.
 */
export async function publishPrepared(
  deps: { registry: UpdateRegistry; sender: Signer; keys: ContentKeyStore },
  p: PreparedRelease,
): Promise<{ gasUsed: bigint; transactionHash: string; blockNumber: number }> {
  await deps.keys.save(p.releaseId, p.contentKey);
  const registry = deps.registry.connect(deps.sender);
  // Only a refusal by the contract is certain; after any other failure (an outage, a timeout) the
  // release may be on the ledger, and its key is kept, as it is when the re-check cannot be made.
  const tx = await registry.publishRelease(p.record, p.signer, p.signature, p.witnesses).catch(async (err: unknown) => {
    throw isContractRefusal(err) ? await explainRefusedPublish({ registry, keys: deps.keys }, p, err).catch(() => err) : err;
  });
  const receipt = await minedWithin(tx).catch(async (err: unknown) => {
    const mined = (err as { receipt?: TransactionReceipt | null }).receipt;
    throw isContractRefusal(err) && mined ? await explainRefusedPublish({ registry, keys: deps.keys }, p, err, mined).catch(() => err) : err;
  });
  if (!receipt || receipt.status !== 1) throw new InputError("PUBLISH_FAILED", `the publishing transaction ${tx.hash} failed`);
  return { gasUsed: receipt.gasUsed, transactionHash: tx.hash, blockNumber: receipt.blockNumber };
}

/** "<component> <range>" as given to --depends: "acme.bootloader >=1.0.0 <2.0.0" or "acme.bootloader ^1.0.0". */
export function parseDependency(text: string) {
  const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(text);
  if (!m) throw new InputError("DEPENDENCY_FORMAT", `--depends "${text}" must be "<component> <range>", e.g. "acme.bootloader >=1.0.0 <2.0.0"`);
  return dependsOn(componentId(m[1]), m[2]);
}

async function resolveHardware(registry: UpdateRegistry, given: string[]): Promise<number[]> {
  if (given.length === 0) throw new InputError("HARDWARE_MISSING", "name at least one hardware class with --hardware");
  const known = await listHardwareClasses(registry);
  return given.map((h) => resolveHardwareClass(h, known, "--hardware"));
}
