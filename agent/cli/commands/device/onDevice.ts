import path from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../../context";
import { writeNewKeyFile } from "../../newKeyFile";
import { finishDeviceRun } from "../../finishDeviceRun";
import { parseBytes32 } from "../../parse";
import { lockFolder } from "../../../files/pidLock";
import { checkDevicePolicy, refusalWhy } from "../../policyCheck";
import type { PolicyExplanation } from "../../../chain/policyExplanation";
import { InputError, OtaError } from "../../../core/errors";
import { componentIdOf } from "../../../core/release";
import { encodeVersion, formatVersion } from "../../../core/version";
import { deliverySourcesOf, loadDeviceConfig, type DeviceConfig } from "../../../consumer/deviceConfig";
import { SourceSet } from "../../../consumer/deliverySources";
import { DeviceAgent } from "../../../consumer/deviceAgent";
import { DeviceRunner } from "../../../consumer/deviceRunner";
import { JsonRpcProvider, Network } from "ethers";
import { requireContracts } from "../../config";
import { registryDomain } from "../../../crypto/releaseSignature";
import { UpdateRegistry__factory, FleetRegistry__factory } from "../../../chain/contracts";
import { openBundle } from "../../../consumer/offlineBundle";
import type { UpdateOutcome } from "../../../consumer/deviceAgent";

/**
 * What a device runs itself, added to a `device` command: its agent (`device run`), an install by
 * hand (`device install`) and a new key (`device keygen`). The whole of the device's own CLI
 * (deviceMain.ts, the bundle a device carries, ADR 0007), and part of `ota-ledger device` beside
 * the administrator's commands (commands/device.ts): keep its imports to what a device needs.
 */
export function registerOnDeviceCommands(device: Command, ctx: CliContext): void {
  device
    .command("keygen <file>")
    .description("make a new device key in <file> (mode 0600; never overwrites); prints the public key to enrol")
    .action(async (file: string) => {
      const { keyFile, wallet } = await writeNewKeyFile(ctx.io.cwd, file);
      const publicKey = wallet.signingKey.compressedPublicKey;
      ctx.output(
        { keyFile, publicKey },
        `device key written to ${keyFile}\n  public key  ${publicKey}\n` +
          `enrol it: ota-ledger device enrol --id <id> --public-key ${publicKey} --hardware <class> --network <label> --region <label>`,
      );
    });

  device
    .command("install")
    .description(
      "install a release by hand (CAP-11.1-b), with every check of an automatic update: the way out of safe mode and of a failed trial. Stop `device run` first",
    )
    .requiredOption("--device-config <file>", "the device's identity and choices (device.json)")
    .option("--release <id>", "the release id (0x + 64 hex digits); with --offline, optional (checked against the bundle's)")
    .option(
      "--offline <bundle>",
      "install from an offline bundle (`ota-ledger release export`) with no network at all: its block must be one this device trusts (docs/device.md)",
    )
    .option("--artifact <file>", "the encrypted artifact, as `release publish` wrote it (default: download it from the firmware server)")
    .option("--url <url>", "where to fetch the encrypted artifact instead (e.g. an IPFS gateway)")
    .option("--floor <component=version>", "in safe mode: a component's anti-rollback floor to restore, e.g. acme.bootloader=1.1.0 (repeat)", collect, [])
    .option("--retry-failed", "take a release that failed its trial boot on this device before (clears that failure first)")
    .action(
      async (o: { deviceConfig: string; release?: string; offline?: string; artifact?: string; url?: string; floor: string[]; retryFailed?: boolean }) => {
        if (o.offline !== undefined) return installOffline(ctx, { ...o, offline: o.offline });
        if (o.release === undefined) throw new InputError("INVALID_INPUT", "device install needs --release <id> (or --offline <bundle>)");
        const releaseId = parseBytes32(o.release, "--release");
        if (o.artifact !== undefined && o.url !== undefined)
          throw new InputError("INVALID_INPUT", "give the artifact with --artifact <file> or --url <url>, not both");
        const source = o.artifact !== undefined ? { file: path.resolve(ctx.io.cwd, o.artifact) } : o.url !== undefined ? { url: o.url } : undefined;
        const floors = Object.fromEntries(o.floor.map(parseFloor));
        const config = await ctx.config();
        const d = await loadDeviceConfig(path.resolve(ctx.io.cwd, o.deviceConfig));
        const chain = await ctx.connectReadOnly();
        const log = (l: string) => ctx.io.stderr(l + "\n");
        const lock = await lockFolder(d.dataDir, "a device agent (device run or device install)");
        try {
          await installByHand(ctx, o, d, config.serverUrl, chain, releaseId, source, floors, log, path.resolve(ctx.io.cwd, o.deviceConfig));
        } finally {
          await lock.release();
        }
      },
    );

  device
    .command("run")
    .description("run this device's agent: follow the ledger, verify, install into A/B slots, report (Ctrl-C stops)")
    .requiredOption("--device-config <file>", "the device's identity and choices (device.json, see docs/device.md)")
    .option("--once", "consider what the ledger holds now, then exit")
    .action(async (o: { deviceConfig: string; once?: boolean }) => {
      const config = await ctx.config();
      const d = await loadDeviceConfig(o.deviceConfig);
      const chain = await ctx.connectReadOnly();
      // One agent per data folder: two would write the same slots (`device install` takes it too).
      const lock = await lockFolder(d.dataDir, "a device agent (device run or device install)");
      try {
        const sources = await openSources(d, config.serverUrl, (l) => ctx.io.stderr(l + "\n"));
        const runner = await DeviceRunner.start(
          withDeltaSetting(chain, d),
          [
            {
              dataDir: d.dataDir,
              device: { privateKey: d.privateKey, credential: d.credential },
              serverUrl: config.serverUrl,
              sources,
              components: d.components,
              policy: d.policy,
              healthCheck: d.healthCheck,
              tracker: d.tracker,
              ledgerProofs: d.ledgerProofs,
              pinnedSigners: d.pinnedSigners,
              ...(d.startJitterMs !== undefined ? { download: { startJitterMs: d.startJitterMs } } : {}),
              log: (l) => ctx.io.stderr(l + "\n"),
            },
          ],
          { stateDir: d.dataDir, followLedger: d.followLedger, retryMs: d.retryMs, log: (l) => ctx.io.stderr(l + "\n") },
        );
        await finishDeviceRun(ctx, runner, o.once);
      } finally {
        await lock.release();
      }
    });
}

/**
 * The device's sources (device.json `sources`, else the configuration's serverUrl) with the health
 * it remembers in <dataDir>/sources.json: a source demoted before a restart is still tried last.
 */
function openSources(d: DeviceConfig, serverUrl: string, log: (line: string) => void): Promise<SourceSet> {
  return SourceSet.open(deliverySourcesOf(d, serverUrl), { stateFile: path.join(d.dataDir, "sources.json"), log });
}

/**
 * The chain the agent uses: with the deployment's ReleaseDeltas (ADR 0018) the device takes a
 * release's delta from the image it runs, unless device.json says `"deltas": false`.
 */
function withDeltaSetting<C extends { deltas?: unknown }>(chain: C, d: Pick<DeviceConfig, "deltas">): C {
  return d.deltas ? chain : { ...chain, deltas: undefined };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** --floor acme.bootloader=1.1.0 (a component name or id, and a version) as [component id, encoded version]. */
function parseFloor(text: string): [string, bigint] {
  const m = /^\s*([^=\s]+)\s*=\s*(\S+)\s*$/.exec(text);
  if (!m) throw new InputError("INVALID_INPUT", `--floor "${text}" must be <component>=<version>, e.g. acme.bootloader=1.1.0`);
  const component = componentIdOf(m[1]).toLowerCase();
  return [component, encodeVersion(m[2])];
}

/** `device install`'s work, on a data folder it holds: by hand, with every check of an automatic update. */
async function installByHand(
  ctx: CliContext,
  o: { retryFailed?: boolean; floor: string[] },
  d: DeviceConfig,
  serverUrl: string,
  chain: Awaited<ReturnType<CliContext["connectReadOnly"]>>,
  releaseId: string,
  source: { file: string } | { url: string } | undefined,
  floors: Record<string, bigint>,
  log: (line: string) => void,
  configFile: string,
): Promise<void> {
  // No tracker here: the install sends no report and takes no notice; `device run` reports the result when it starts.
  const agent = await DeviceAgent.open({
    dataDir: d.dataDir,
    device: { privateKey: d.privateKey, credential: d.credential },
    serverUrl,
    sources: await openSources(d, serverUrl, log),
    chain: withDeltaSetting(chain, d),
    components: d.components,
    policy: d.policy,
    healthCheck: d.healthCheck,
    ledgerProofs: d.ledgerProofs,
    pinnedSigners: d.pinnedSigners,
    ...(d.startJitterMs !== undefined ? { download: { startJitterMs: d.startJitterMs } } : {}),
    log,
  });
  await finishInstall(ctx, agent, o, releaseId, configFile, chain, (safeMode) => {
    if (source) return agent.manualInstall(releaseId, source, floors);
    // From the firmware server, as an automatic update downloads it; safe mode ends first, as in manualInstall.
    return (safeMode ? agent.slots.leaveSafeMode(floors) : Promise.resolve()).then(() => agent.considerRelease(releaseId, "manual"));
  });
}

/**
 * `device install --offline <bundle>` (issue 19 item 10, ADR 0017): no RPC endpoint, firmware
 * server or tracker is asked. The chain id and the registries' addresses come from the
 * configuration and its deployment file; the bundle's block must be one the device learned while
 * online (<dataDir>/offline-state.json) or one device.json lists (offline.trustedBlocks).
 */
async function installOffline(
  ctx: CliContext,
  o: { deviceConfig: string; release?: string; offline: string; artifact?: string; url?: string; floor: string[]; retryFailed?: boolean },
): Promise<void> {
  if (o.artifact !== undefined || o.url !== undefined)
    throw new InputError("INVALID_INPUT", "--offline takes the ciphertext from the bundle: leave out --artifact and --url");
  const config = await ctx.config();
  const { registry, fleet } = requireContracts(config);
  if (config.chainId === undefined)
    throw new InputError(
      "CHAIN_ID_MISSING",
      "an offline install needs the chain id: set chainId in the configuration (or OTA_CHAIN_ID), or keep the deployment file",
    );
  const chainId = BigInt(config.chainId);
  const configFile = path.resolve(ctx.io.cwd, o.deviceConfig);
  const d = await loadDeviceConfig(configFile);
  const bundle = await openBundle(path.resolve(ctx.io.cwd, o.offline));
  const releaseId = bundle.release.id.toLowerCase();
  if (o.release !== undefined && parseBytes32(o.release, "--release").toLowerCase() !== releaseId)
    throw new InputError("INVALID_INPUT", `--release ${o.release} is not the bundle's release ${releaseId}`);
  const floors = Object.fromEntries(o.floor.map(parseFloor));
  const log = (l: string) => ctx.io.stderr(l + "\n");
  const provider = new OfflineProvider(chainId);
  const domain = registryDomain(chainId, registry);
  const chain = {
    provider,
    registry: UpdateRegistry__factory.connect(registry, provider),
    fleet: FleetRegistry__factory.connect(fleet, provider),
    domain,
    fromBlock: config.sources.deployedAtBlock ?? 0,
  };
  const lock = await lockFolder(d.dataDir, "a device agent (device run or device install)");
  try {
    // No tracker: the result stays unreported in the boot state, and `device run` sends it in its first report that reaches the tracker.
    const agent = await DeviceAgent.open({
      dataDir: d.dataDir,
      device: { privateKey: d.privateKey, credential: d.credential },
      serverUrl: config.serverUrl,
      sources: [],
      chain,
      components: d.components,
      policy: d.policy,
      healthCheck: d.healthCheck,
      ledgerProofs: "off",
      pinnedSigners: d.pinnedSigners,
      log,
    });
    await finishInstall(ctx, agent, o, releaseId, configFile, undefined, () =>
      agent.offlineInstall(
        bundle,
        { chainId, registry, fleet, domain, maxBlockAgeSeconds: d.offline.maxBlockAgeSeconds, configured: d.offline.trustedBlocks },
        floors,
      ),
    );
  } finally {
    await lock.release();
    provider.destroy();
  }
}

/** An ethers provider that never sends anything: an offline install must not reach the network, and any attempt fails loudly. */
class OfflineProvider extends JsonRpcProvider {
  constructor(chainId: bigint) {
    super("http://offline.invalid", Network.from(chainId), { staticNetwork: true });
  }
  override async _send(): Promise<never> {
    throw new OtaError("OFFLINE", "an offline install reads nothing from the network");
  }
}

/** Runs the install (`act`, told whether the device was in safe mode) and prints its result, or throws the refusal with a hint. */
async function finishInstall(
  ctx: CliContext,
  agent: DeviceAgent,
  o: { retryFailed?: boolean; floor: string[] },
  releaseId: string,
  configFile: string,
  chain: Awaited<ReturnType<CliContext["connectReadOnly"]>> | undefined,
  act: (safeMode: boolean) => Promise<UpdateOutcome>,
): Promise<void> {
  const safeMode = agent.safeMode;
  if (o.floor.length > 0 && !safeMode)
    throw new InputError("INVALID_INPUT", "--floor applies only in safe mode: this device is not in safe mode and keeps its own anti-rollback floors");
  if (o.retryFailed) await agent.slots.clearFailure(releaseId);
  const outcome = await act(safeMode);
  const report = await agent.statusReport();
  // A policy's refusal explained as `policy check` explains it (issue 18): which policy, its reason by name.
  const explained = outcome.policy && chain ? await explainRefusal(chain, configFile, releaseId) : undefined;
  const result = { ...outcome, leftSafeMode: safeMode, safeMode: report.safeMode, installed: report.installed, ...(explained ? { explained } : {}) };
  if (outcome.outcome !== "confirmed") {
    const hint =
      outcome.code === "PREVIOUSLY_FAILED"
        ? ": it failed its trial boot on this device before; fix the cause, then run again with --retry-failed"
        : outcome.outcome === "rolled-back"
          ? ": the trial boot failed and the device runs its previous image"
          : outcome.outcome === "blocked"
            ? ": its delivery was blocked (the server, the network or the bytes given, not the release); run again, or give the artifact with --file or --url"
            : outcome.policy
              ? `: the update policy ${outcome.policy.address} refuses this device now (${explained ? `${explained.policy} ${refusalWhy(explained)}` : `reason ${outcome.policy.reason}`}); ota-ledger policy check --release ${releaseId} --device-config <device.json> says more`
              : "";
    throw new OtaError(outcome.code, `release ${releaseId} was not installed: ${outcome.outcome} (${outcome.code})${hint}`, { details: result });
  }
  ctx.output(
    result,
    [
      `installed release ${releaseId} by hand${safeMode ? " and left safe mode" : ""}`,
      ...report.installed.map((i) => `  ${i.component}  ${formatVersion(BigInt(i.version))} (slot ${i.slot})`),
    ].join("\n"),
  );
}

/** The policy that refused and its reason's name, asked as `policy check` asks; undefined when the ledger does not answer (the refusal stands as it is). */
async function explainRefusal(
  chain: Awaited<ReturnType<CliContext["connectReadOnly"]>>,
  configFile: string,
  releaseId: string,
): Promise<PolicyExplanation["decidedBy"] | undefined> {
  try {
    const answer = await checkDevicePolicy(chain, configFile, releaseId);
    return answer.policy && !answer.policy.allowed ? answer.policy.decidedBy : undefined;
  } catch {
    return undefined;
  }
}
