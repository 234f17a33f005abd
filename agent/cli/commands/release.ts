import type { Command } from "commander";
import path from "node:path";
import { Wallet } from "ethers";
import type { CliContext } from "../context";
import { InputError, OtaError } from "../../core/errors";
import { formatVersion } from "../../core/version";
import { decodeDeviceCredential, type DeviceCredential } from "../../crypto/deviceCredential";
import { exportRelease } from "../../author/exportRelease";
import { ContentKeyStore } from "../../author/contentKeyStore";
import { prepareRelease, publishPrepared } from "../../author/publishRelease";
import { uploadArtifact } from "../../author/uploadArtifact";
import { ContractSigner } from "../../author/contractSigner";
import { grantKeys, type GrantResult } from "../../author/grantKeys";
import { readyRelease, type GrantSelection } from "../../author/readyRelease";
import { readProofsFile } from "../deviceFiles";
import { parseAddress, parseBytes32, parseIdOrLabel } from "../parse";
import { policyOfRelease } from "../policyLookup";
import { confirm, describeTx } from "../transactions";
import { ApprovalPolicy__factory } from "../../chain/contracts";
import { progressBar } from "../progress";
import { fetchRelease } from "../../chain/releaseEvents";
import { artifactSize, DEFAULT_CIPHER_CHUNK_SIZE } from "../../crypto/artifactCipher";
import { promises as fs } from "node:fs";
import { registerStatusCommands } from "./release/status";
import { checkDeltasRecordable, describeDeltas, DeltaWorkspace, publishDeltas, resolveDeltaBase, targetImage, type DeltaResult } from "../releaseDeltas";

interface PublishOptions {
  component: string;
  version: string;
  file: string;
  hardware: string;
  depends: string[];
  fileName?: string;
  signerKeyFile?: string;
  signer?: string;
  out?: string;
  dryRun?: boolean;
  grant: string[];
  devicesFile?: string;
  deltaFrom: string[];
}

/**
 * `release`: the author's commands (publish a release, grant its key to devices), the approvers'
 * (ApprovalPolicy), then reading a release's record and status and the auditors' actions
 * (release/status.ts).
 */
export function register(program: Command, ctx: CliContext): void {
  const release = program.command("release").description("publish releases and grant their keys to devices");

  release
    .command("publish")
    .description("hash, encrypt, compute the chunk Merkle root, sign, submit to the firmware server (and grant keys), then publish on the ledger")
    .requiredOption("--component <name>", "the component (registered to your provider)")
    .requiredOption("--version <semver>", "the new version, greater than the latest published")
    .requiredOption("--file <path>", "the plaintext image")
    .requiredOption("--hardware <a,b>", "supported hardware classes, by name or id, comma-separated")
    .option("--depends <dependency>", 'a dependency, "<component> <range>" (repeat for several)', collect, [])
    .option("--file-name <name>", "the file name recorded on the ledger (default: the file's base name)")
    .option("--signer-key-file <path>", "the provider's release-signing key, if not the account key")
    .option("--signer <address>", "the provider's registered ERC-1271 contract signer that vouches for that key's signature (default: the key's own address)")
    .option("--out <dir>", "where to write the encrypted artifact (default: beside the keystore, artifacts/)")
    .option("--dry-run", "do everything but submit and publish")
    .option("--grant <device>", "grant the content key to a device id or label, or all-eligible, before publishing (repeat for several)", collect, [])
    .option("--devices-file <proofs.json>", "with --grant: credentials of batch-enrolled devices (written by `device enrol --batch`)")
    .option(
      "--delta-from <version|releaseId[=image]>",
      "after publishing, record and submit a delta from this earlier release of the component (its image: =<file>, else its artifact in --out decrypted) (repeat for several)",
      collect,
      [],
    )
    .action(async (o: PublishOptions) => {
      const work = new DeltaWorkspace(); // base images decrypted for --delta-from, removed at the end
      try {
        const config = await ctx.config();
        const conn = await ctx.connect();
        const { registry, fleet, signer, domain, fromBlock } = conn;
        const signingKey = o.signerKeyFile ? await readKey(o.signerKeyFile) : signer;
        const releaseSigner = o.signer !== undefined ? new ContractSigner(parseAddress(o.signer, "--signer"), signingKey) : signingKey;
        const bar = progressBar(ctx.io, !ctx.json);
        const keys = new ContentKeyStore(config.keystoreDir);
        const artifactDir = o.out ?? path.join(path.dirname(config.keystoreDir), "artifacts");
        const hardware = o.hardware
          .split(",")
          .map((h) => h.trim())
          .filter(Boolean);
        const grantSelection = o.grant.length > 0 ? await grantSelectionOf(o.grant, o.devicesFile) : undefined;
        const prepared = await prepareRelease(
          { registry, domain, sender: signer, releaseSigner },
          { component: o.component, version: o.version, file: o.file, hardware, depends: o.depends, fileName: o.fileName },
          artifactDir,
          (_stage, done, total) => bar.update("encrypting", done, total),
        );
        bar.end();
        const r = prepared.record;
        // Deltas (ADR 0018): every base checked, and its image found, before anything is sent.
        const deltaTarget = { component: r.component, componentName: o.component, version: r.version, provider: Number(r.provider) };
        const bases = [];
        for (const text of o.deltaFrom)
          bases.push(await resolveDeltaBase(conn, deltaTarget, text, { artifactDir, keys, work, cwd: ctx.io.cwd, option: "--delta-from" }));
        if (bases.length > 0) await checkDeltasRecordable(conn, deltaTarget, bases, artifactDir);
        const summary = {
          releaseId: prepared.releaseId,
          component: o.component,
          version: formatVersion(r.version),
          cid: r.fileLink,
          merkleRoot: r.merkleRoot,
          fileHash: r.fileHash,
          fileSize: r.fileSize,
          hardware: r.hardware,
          artifactFile: prepared.artifactFile,
          signer: prepared.signer,
        };
        if (o.dryRun) {
          ctx.output(
            { dryRun: true, release: summary },
            [`dry run: release ${summary.releaseId} would be accepted by the registry`, ...describe(summary)].join("\n"),
          );
          return;
        }
        // The release is made ready before it is visible (issue 17): the artifact is submitted with
        // the signed record and the keys are granted first, then the transaction is sent, so no
        // device that hears of the release meets ARTIFACT_NOT_AVAILABLE or KEY_NOT_GRANTED.
        const authoring = { registry, fleet, domain, author: signer, keys, serverUrl: config.serverUrl, fromBlock };
        let ready;
        try {
          ready = await readyRelease(authoring, prepared, { grant: grantSelection, progress: (done, total) => bar.update("uploading", done, total) });
        } catch (err) {
          if (err instanceof InputError) {
            err.message += " (nothing was published)"; // a device named wrongly, a key store unreadable: fix and run again
            throw err;
          }
          throw new OtaError(
            "SUBMISSION_FAILED",
            `nothing was published: release ${prepared.releaseId} was not made ready on ${config.serverUrl}: ${(err as Error).message}. Run the same command again once the server takes it (what it already holds of this attempt expires unpublished)`,
            { cause: err },
          );
        } finally {
          bar.end();
        }
        let tx;
        try {
          tx = await publishPrepared({ registry, sender: signer, keys }, prepared);
        } catch (err) {
          // The transaction failed: what the server holds stays prepared, never served, and expires.
          if (ready.ready && err instanceof OtaError) {
            const until = ready.upload.expiresAt === undefined ? "" : ` at ${new Date(ready.upload.expiresAt).toISOString()}`;
            err.message += ` (the artifact and keys submitted to ${config.serverUrl} are never served for an unpublished release and expire there${until})`;
            err.details.preparedExpiresAt = ready.upload.expiresAt;
          }
          throw err;
        }
        let upload = ready.ready ? ready.upload : undefined;
        let grant: GrantResult | undefined = ready.ready ? ready.grant : undefined;
        if (!ready.ready) {
          // An older server takes only published releases: the order before issue 17.
          try {
            upload = await uploadArtifact({ serverUrl: config.serverUrl, author: signer }, prepared.releaseId, prepared.artifactFile, (done, total) =>
              bar.update("uploading", done, total),
            );
          } catch (err) {
            // The release is on the ledger; only the submission is to be done again.
            throw new OtaError(
              "SUBMISSION_FAILED",
              `release ${prepared.releaseId} is published (tx ${tx.transactionHash}) but was not submitted: ${(err as Error).message}. Retry with \`ota-ledger release submit ${prepared.releaseId} --artifact ${prepared.artifactFile}\``,
            );
          } finally {
            bar.end();
          }
          if (grantSelection) grant = await grantKeys(authoring, prepared.releaseId, grantSelection);
        }
        let deltas: DeltaResult[] | undefined;
        if (bases.length > 0) {
          try {
            deltas = await publishDeltas(conn, {
              releaseId: prepared.releaseId,
              contentKey: prepared.contentKey,
              imageFile: path.resolve(ctx.io.cwd, o.file),
              fullArtifactBytes: (await fs.stat(prepared.artifactFile)).size,
              bases,
              artifactDir,
              serverUrl: config.serverUrl,
            });
          } catch (err) {
            const retry = `ota-ledger release delta add ${prepared.releaseId} ${bases.map((b) => `--from ${b.text}`).join(" ")}${o.out ? ` --out ${o.out}` : ""}`;
            throw new OtaError(
              "DELTA_FAILED",
              `release ${prepared.releaseId} is published (tx ${tx.transactionHash}) but its deltas were not all recorded and submitted: ${(err as Error).message}. Retry with \`${retry}\``,
              { cause: err, details: { releaseId: prepared.releaseId } },
            );
          }
        }
        ctx.output(
          {
            release: summary,
            tx: { hash: tx.transactionHash, block: tx.blockNumber, gasUsed: Number(tx.gasUsed) },
            upload,
            ...(grant ? { grant } : {}),
            ...(deltas ? { deltas } : {}),
          },
          [
            `published release ${summary.releaseId}`,
            ...describe(summary),
            `  gas used     ${tx.gasUsed} (tx ${tx.transactionHash})`,
            ready.ready
              ? `  submitted to ${config.serverUrl} before publishing`
              : `  submitted to ${config.serverUrl} (after publishing: the server takes only published releases)`,
            ...(grant ? [`  granted to   ${grant.granted.length} device(s)`, ...grant.skipped.map((x) => `    - ${x.deviceId}: ${x.reason}`)] : []),
            ...describeDeltas(deltas ?? []),
          ].join("\n"),
        );
      } finally {
        await work.close();
      }
    });

  release
    .command("submit <release>")
    .description("submit a published release's artifact to the firmware server (again)")
    .requiredOption("--artifact <path>", "the encrypted artifact written by `release publish`")
    .action(async (releaseId: string, o: { artifact: string }) => {
      const config = await ctx.config();
      const { signer } = await ctx.connect();
      const bar = progressBar(ctx.io, !ctx.json);
      try {
        const upload = await uploadArtifact({ serverUrl: config.serverUrl, author: signer }, releaseId, o.artifact, (done, total) =>
          bar.update("uploading", done, total),
        );
        bar.end();
        // 200: the server already serves this release; it did not look at the bytes sent this time.
        const text =
          upload.status === 200
            ? `the firmware server at ${config.serverUrl} already holds release ${releaseId} (CID ${upload.cid}): nothing to submit`
            : `submitted release ${releaseId} to ${config.serverUrl} (CID ${upload.cid})`;
        ctx.output({ releaseId, ...upload, alreadyHeld: upload.status === 200 }, text);
      } finally {
        bar.end();
      }
    });

  release
    .command("delta")
    .description("deltas of a release from earlier releases of its component (ADR 0018): what devices running those fetch instead of the whole image")
    .command("add <release>")
    .description("package a delta from each --from release to this published one, record it on ReleaseDeltas and submit it to the firmware server")
    .requiredOption("--from <version|releaseId[=image]>", "the earlier release of the same component (repeat for several)", collect, [])
    .option("--image <file>", "the release's plaintext image (default: its artifact in --out, decrypted with its content key)")
    .option("--base-image <file>", "with one --from: the base release's plaintext image (the same as --from <base>=<file>)")
    .option("--out <dir>", "where `release publish` wrote the artifacts, and where the delta is written (default: beside the keystore, artifacts/)")
    .action(async (releaseText: string, o: { from: string[]; image?: string; baseImage?: string; out?: string }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      if (o.baseImage !== undefined && o.from.length !== 1)
        throw new InputError("INVALID_INPUT", "--base-image goes with a single --from; with several, give each image as --from <base>=<file>");
      if (o.baseImage !== undefined && o.from[0].includes("="))
        throw new InputError("INVALID_INPUT", "give the base image once: --base-image <file> or --from <base>=<file>, not both");
      const config = await ctx.config();
      const conn = await ctx.connect();
      const release =
        (await conn.registry.releaseStatus(releaseId)) === 0n ? undefined : await fetchRelease(conn.registry, conn.domain, releaseId, conn.fromBlock);
      if (!release) throw new InputError("RELEASE_UNKNOWN", `no release ${releaseId} on the registry`);
      const [componentName] = await conn.registry.component(release.record.component);
      const keys = new ContentKeyStore(config.keystoreDir);
      const artifactDir = o.out ? path.resolve(ctx.io.cwd, o.out) : path.join(path.dirname(config.keystoreDir), "artifacts");
      const target = {
        releaseId,
        component: release.record.component,
        componentName,
        version: release.record.version,
        provider: Number(release.record.provider),
      };
      const work = new DeltaWorkspace();
      try {
        const froms = o.baseImage !== undefined ? [`${o.from[0]}=${path.resolve(ctx.io.cwd, o.baseImage)}`] : o.from;
        const bases = [];
        for (const text of froms) bases.push(await resolveDeltaBase(conn, target, text, { artifactDir, keys, work, cwd: ctx.io.cwd, option: "--from" }));
        const imageFile = await targetImage(release, componentName, o.image === undefined ? undefined : path.resolve(ctx.io.cwd, o.image), {
          artifactDir,
          keys,
          work,
        });
        await checkDeltasRecordable(conn, target, bases, artifactDir);
        const fullArtifact = path.join(artifactDir, `${componentName}-${formatVersion(release.record.version)}.otae`);
        const fullArtifactBytes = await fs.stat(fullArtifact).then(
          (st) => st.size,
          () => Number(artifactSize(release.record.fileSize, DEFAULT_CIPHER_CHUNK_SIZE)),
        );
        const deltas = await publishDeltas(conn, {
          releaseId,
          contentKey: await keys.load(releaseId),
          imageFile,
          fullArtifactBytes,
          bases,
          artifactDir,
          serverUrl: config.serverUrl,
          progress: (line) => ctx.json || ctx.io.stderr(line + "\n"),
        });
        ctx.output(
          { releaseId, component: componentName, version: formatVersion(release.record.version), deltas },
          [
            `recorded and submitted ${deltas.length} delta(s) of ${componentName} ${formatVersion(release.record.version)} (${releaseId})`,
            ...describeDeltas(deltas),
          ].join("\n"),
        );
      } finally {
        await work.close();
      }
    });

  release
    .command("grant <release>")
    .description("wrap the release's content key for devices and hand the wrapped keys to the firmware server")
    .requiredOption("--device <id>", "a device id or label, or all-eligible (repeat for several)", collect, [])
    .option("--devices-file <proofs.json>", "credentials of batch-enrolled devices (written by `device enrol --batch`)")
    .action(async (releaseId: string, o: { device: string[]; devicesFile?: string }) => {
      const config = await ctx.config();
      const { registry, fleet, signer, domain, fromBlock } = await ctx.connect();
      const result = await grantKeys(
        { registry, fleet, domain, author: signer, keys: new ContentKeyStore(config.keystoreDir), serverUrl: config.serverUrl, fromBlock },
        releaseId,
        await grantSelectionOf(o.device, o.devicesFile),
      );
      ctx.output(
        result,
        [
          `granted release ${releaseId} to ${result.granted.length} device(s)`,
          ...result.granted.map((d) => `  + ${d}`),
          ...result.skipped.map((s) => `  - ${s.deviceId}: ${s.reason}`),
        ].join("\n"),
      );
    });
  release
    .command("export <release>")
    .description(
      "write an offline bundle for one device (a USB stick): the ledger record, the signature, storage proofs at a block the device trusts, the ciphertext and the key wrapped for the device (docs/device.md)",
    )
    .requiredOption(
      "--device <id|file>",
      "the device: an id or label enrolled singly, or a file with its credential (its device.json, or {record, batchId, proof})",
    )
    .requiredOption("--out <file>", "the bundle to write (never overwritten)")
    .requiredOption("--artifact <file>", "the encrypted artifact, as `release publish` wrote it")
    .option(
      "--block <number>",
      "the block to prove at: one the device trusts (default: the newest block; see `device install --offline`'s refusal for the device's blocks)",
    )
    .action(async (releaseText: string, o: { device: string; out: string; artifact: string; block?: string }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      const block = o.block === undefined ? undefined : parseBlockNumber(o.block);
      const config = await ctx.config();
      const device = await deviceArgument(path.resolve(ctx.io.cwd, o.device), o.device);
      const { provider, registry, fleet, domain, fromBlock, chainId } = await ctx.connectReadOnly();
      const result = await exportRelease(
        { provider, registry, fleet, domain, chainId, fromBlock, keys: new ContentKeyStore(config.keystoreDir) },
        { releaseId, device, artifactFile: path.resolve(ctx.io.cwd, o.artifact), out: path.resolve(ctx.io.cwd, o.out), block },
      );
      ctx.output(
        result,
        [
          `exported release ${result.releaseId} for device ${result.deviceId} to ${result.bundle}`,
          `  block        ${result.block.number} (${result.block.hash}, ${new Date(result.block.timestamp * 1000).toISOString()})`,
          `  size         ${result.bytes.bundle} bytes (ciphertext ${result.bytes.ciphertext}, manifest ${result.bytes.manifest})`,
          `  install it:  ota-device device install --device-config device.json --offline ${path.basename(result.bundle)}`,
        ].join("\n"),
      );
    });

  release
    .command("approve <releaseId>")
    .description("approve a release as an approver of its ApprovalPolicy (or withdraw the approval)")
    .option("--policy <address>", "the ApprovalPolicy (default: the one in the policy attached to the release)")
    .option("--withdraw", "withdraw your approval instead")
    .action(async (releaseText: string, o: { policy?: string; withdraw?: boolean }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      const policyOption = o.policy === undefined ? undefined : parseAddress(o.policy, "--policy");
      const conn = await ctx.connect();
      const address = await policyOfRelease(conn, releaseId, "approval", policyOption);
      const policy = ApprovalPolicy__factory.connect(address, conn.signer);
      const me = conn.signer.address;
      if (!(await policy.isApprover(me))) {
        throw new OtaError(
          "NOT_AN_APPROVER",
          `the account ${me} is not an approver of the approval policy ${address}: send with an approver's key, or have an administrator add it`,
          {
            details: { account: me, policy: address },
          },
        );
      }
      const approved = await policy.hasApproved(releaseId, me);
      if (!o.withdraw && approved)
        throw new OtaError("ALREADY_APPROVED", `${me} has already approved release ${releaseId}: nothing sent (--withdraw withdraws it)`, {
          details: { account: me, releaseId },
        });
      if (o.withdraw && !approved)
        throw new OtaError("NOT_APPROVED", `${me} has not approved release ${releaseId}: there is no approval to withdraw`, {
          details: { account: me, releaseId },
        });
      const { tx } = await confirm(o.withdraw ? policy.revokeApproval(releaseId) : policy.approve(releaseId));
      const [approvals, threshold] = await Promise.all([policy.approvalCount(releaseId), policy.threshold()]);
      ctx.output(
        { releaseId, policy: address, approver: me, approved: !o.withdraw, approvals: Number(approvals), threshold: Number(threshold), tx },
        `${me} ${o.withdraw ? "withdrew the approval of" : "approved"} release ${releaseId}: ${approvals} of ${threshold} approvals needed\n${describeTx(tx)}`,
      );
    });

  release
    .command("approvals <releaseId>")
    .description("a release's approvals in its ApprovalPolicy: how many, how many needed, and who")
    .option("--policy <address>", "the ApprovalPolicy (default: the one in the policy attached to the release)")
    .action(async (releaseText: string, o: { policy?: string }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      const policyOption = o.policy === undefined ? undefined : parseAddress(o.policy, "--policy");
      const conn = await ctx.connectReadOnly();
      const address = await policyOfRelease(conn, releaseId, "approval", policyOption);
      const policy = ApprovalPolicy__factory.connect(address, conn.provider);
      const [approvals, threshold, approvers] = await Promise.all([policy.approvalCount(releaseId), policy.threshold(), policy.approvers()]);
      const who = await Promise.all(approvers.map(async (a) => ({ approver: a, approved: await policy.hasApproved(releaseId, a) })));
      ctx.output(
        { releaseId, policy: address, approvals: Number(approvals), threshold: Number(threshold), approved: approvals >= threshold, approvers: who },
        [
          `release ${releaseId}: ${approvals} of ${threshold} approvals needed (${approvals >= threshold ? "approved" : "not yet approved"}), policy ${address}`,
          ...who.map((w) => `  ${w.approved ? "+" : "-"} ${w.approver}`),
        ].join("\n"),
      );
    });

  registerStatusCommands(release, ctx);
}

function describe(s: {
  component: string;
  version: string;
  cid: string;
  merkleRoot: string;
  fileHash: string;
  fileSize: bigint;
  artifactFile: string;
}): string[] {
  return [
    `  component    ${s.component} ${s.version}`,
    `  CID          ${s.cid}`,
    `  Merkle root  ${s.merkleRoot}`,
    `  file hash    ${s.fileHash} (${s.fileSize} bytes)`,
    `  artifact     ${s.artifactFile}`,
  ];
}

/** The devices of --device/--grant (ids, labels or all-eligible) and --devices-file. */
async function grantSelectionOf(devices: string[], devicesFile: string | undefined): Promise<GrantSelection> {
  const allEligible = devices.includes("all-eligible");
  const deviceIds = allEligible ? [] : devices.map((d) => parseIdOrLabel(d, "--device"));
  let credentials: DeviceCredential[] = [];
  if (devicesFile) {
    const proofs = await readProofsFile(devicesFile);
    credentials = proofs.devices.map(({ proof, ...record }) => ({ record, batchId: proofs.batchId, proof }));
  }
  return { deviceIds, allEligible, credentials };
}

/** --block: a block number. */
function parseBlockNumber(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text.trim())) throw new InputError("INVALID_INPUT", `--block "${text}" must be a block number`);
  return Number(text.trim());
}

/**
 * --device of `release export`: a file holding the device's credential (its device.json, a
 * credential {record, batchId, proof}, or a record alone: enrolled singly), else an id or label.
 */
async function deviceArgument(file: string, text: string): Promise<DeviceCredential | string> {
  let raw: string;
  try {
    raw = await fs.readFile(file, "utf8");
  } catch {
    return parseIdOrLabel(text, "--device");
  }
  try {
    const json = JSON.parse(raw) as { credential?: unknown; record?: unknown };
    const credential = json.credential ?? (json.record ? json : { record: json, batchId: 0, proof: [] });
    return decodeDeviceCredential(Buffer.from(JSON.stringify(credential)).toString("base64url"));
  } catch (err) {
    throw new InputError("INVALID_INPUT", `--device ${text}: not a device.json or device credential (${(err as Error).message})`);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function readKey(file: string): Promise<Wallet> {
  let text: string;
  try {
    text = (await fs.readFile(file, "utf8")).trim();
  } catch {
    throw new InputError("SIGNER_KEY_FILE", `cannot read --signer-key-file ${file}`);
  }
  try {
    return new Wallet(text);
  } catch {
    throw new InputError("SIGNER_KEY_FILE", `--signer-key-file ${file} does not hold a private key (0x + 64 hex digits)`);
  }
}
