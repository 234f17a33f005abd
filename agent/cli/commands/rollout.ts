import type { Command } from "commander";
import type { Provider } from "ethers";
import type { CliContext, Connection, ReadOnlyConnection } from "../context";
import { InputError, OtaError } from "../../core/errors";
import { buildCohort, type Cohort } from "../../crypto/cohortTree";
import { StagedRollout__factory, type StagedRollout } from "../../chain/contracts";
import { readDevicesFile, parseWaveOption } from "../cohortFiles";
import { ROLLOUT_STATES, policyOfRelease, requireAdministrator } from "../policyLookup";
import { parseAddress, parseBytes32, parseCount, parseStartTime } from "../parse";
import { trackerPostSigned, trackerTargetOf } from "../trackerClient";
import { confirm, describeTx } from "../transactions";

const MAX_WAVES = 64; // StagedRollout.MAX_WAVES
const DEFAULT_THRESHOLD = "1";

interface CreateOptions {
  wave: string[];
  threshold: string;
  policy?: string;
  tracker?: string | false;
}

/**
 * Staged rollouts (X.1368 App. II, APP-II-3; ADR 0005): an administrator creates a release's
 * rollout in waves of device cohorts, hands the cohorts to the tracker (which gives each device
 * its proof), and pauses, resumes, aborts or re-thresholds it.
 */
export function register(program: Command, ctx: CliContext): void {
  const rollout = program.command("rollout").description("staged rollouts of a release: waves of device cohorts, pause, resume, abort");

  rollout
    .command("create <releaseId>")
    .description("create the release's rollout on the StagedRollout policy, then hand the cohorts to the tracker")
    .requiredOption(
      "--wave <devices-file[@start]>",
      "a wave: a file of device ids or labels, @ an ISO-8601 time, now (default) or +<n>s|m|h|d (repeat, in order)",
      collect,
      [],
    )
    .option("--threshold <n>", "failed installs that halt the rollout", DEFAULT_THRESHOLD)
    .option("--policy <address>", "the StagedRollout (default: the one in the policy attached to the release)")
    .option("--tracker <url>", "the tracker to hand the cohorts to (overrides tracker.url / OTA_TRACKER_URL)")
    .option("--no-tracker", "do not hand the cohorts to a tracker (do it later with rollout cohorts)")
    .action(async (releaseText: string, o: CreateOptions) => createRollout(ctx, releaseText, o));

  rollout
    .command("cohorts <releaseId>")
    .description("hand a rollout's cohorts to the tracker (again): the same --wave files, in the same order")
    .requiredOption("--wave <devices-file>", "a wave's devices file (an @start is ignored; repeat, in order)", collect, [])
    .option("--policy <address>", "the StagedRollout (default: the one in the policy attached to the release)")
    .option("--tracker <url>", "the tracker (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (releaseText: string, o: { wave: string[]; policy?: string; tracker?: string }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      const policyOption = o.policy === undefined ? undefined : parseAddress(o.policy, "--policy");
      const config = await ctx.config();
      const target = trackerTargetOf(config, o.tracker);
      const cohorts = (await readWaves(ctx, o.wave)).map((w) => buildCohort(w.deviceIds));
      const conn = await ctx.connect();
      const address = await policyOfRelease(conn, releaseId, "staged-rollout", policyOption);
      const onLedger = await StagedRollout__factory.connect(address, conn.provider).rolloutWaves(releaseId);
      if (onLedger.length === 0)
        throw new OtaError("NO_ROLLOUT", `release ${releaseId} has no rollout on ${address}: create it first (ota-ledger rollout create)`);
      if (onLedger.length !== cohorts.length) {
        throw new InputError(
          "ROLLOUT_ROOT_MISMATCH",
          `${cohorts.length} wave(s) given, the rollout on the ledger has ${onLedger.length}: give the same devices files, in the same order`,
        );
      }
      cohorts.forEach((c, i) => {
        if (onLedger[i].cohortRoot.toLowerCase() !== c.root) {
          throw new InputError(
            "ROLLOUT_ROOT_MISMATCH",
            `wave ${i}'s devices make the root ${c.root}, the rollout on the ledger has ${onLedger[i].cohortRoot}: give the devices file the rollout was created with`,
          );
        }
      });
      const sent = await sendCohorts(conn, target, releaseId, cohorts);
      ctx.output(
        { releaseId, tracker: target.url, devices: sent.devices, roots: sent.roots },
        `handed ${cohorts.length} cohort(s), ${sent.devices} device(s), of release ${releaseId} to the tracker at ${target.url}`,
      );
    });

  for (const [action, done] of [
    ["pause", "paused"],
    ["resume", "resumed"],
    ["abort", "aborted (final: no device may take the release)"],
  ] as const) {
    rollout
      .command(`${action} <releaseId>`)
      .description(
        action === "pause"
          ? "pause the rollout: no device may take the release until resume"
          : action === "resume"
            ? "resume a paused rollout (not a halted one: raise its threshold)"
            : "abort the rollout, for good",
      )
      .option("--policy <address>", "the StagedRollout (default: the one in the policy attached to the release)")
      .action(async (releaseText: string, o: { policy?: string }) => {
        const { conn, releaseId, rollout: r, address } = await openRollout(ctx, releaseText, o.policy);
        const status = await r.rolloutStatus(releaseId);
        requireLive(status, releaseId, address);
        if (action === "pause" && status.paused) throw new OtaError("ROLLOUT_ALREADY_PAUSED", `the rollout of ${releaseId} is already paused: nothing sent`);
        if (action === "resume" && !status.paused)
          throw new OtaError(
            "ROLLOUT_NOT_PAUSED",
            `the rollout of ${releaseId} is not paused (it is ${ROLLOUT_STATES[Number(status.state)]}): nothing to resume`,
          );
        if (action === "resume" && status.failures >= status.failureThreshold) {
          throw new OtaError(
            "ROLLOUT_HALTED",
            `the rollout of ${releaseId} is halted (${status.failures} failures, threshold ${status.failureThreshold}): lift the halt first with \`ota-ledger rollout threshold ${releaseId} <n above ${status.failures}>\``,
          );
        }
        await requireAdministrator(conn.registry, conn.signer.address);
        const signed = r.connect(conn.signer);
        const { tx } = await confirm(action === "pause" ? signed.pause(releaseId) : action === "resume" ? signed.resume(releaseId) : signed.abort(releaseId));
        const state = ROLLOUT_STATES[Number((await r.rolloutStatus(releaseId)).state)];
        ctx.output({ releaseId, policy: address, action, state, tx }, `the rollout of ${releaseId} is ${done}; state ${state}\n${describeTx(tx)}`);
      });
  }

  rollout
    .command("threshold <releaseId> <n>")
    .description("set the failure count that halts the rollout (above the count lifts a halt; at or below it halts at once)")
    .option("--policy <address>", "the StagedRollout (default: the one in the policy attached to the release)")
    .action(async (releaseText: string, nText: string, o: { policy?: string }) => {
      const threshold = parseCount(nText, "threshold");
      const { conn, releaseId, rollout: r, address } = await openRollout(ctx, releaseText, o.policy);
      const status = await r.rolloutStatus(releaseId);
      requireLive(status, releaseId, address);
      await requireAdministrator(conn.registry, conn.signer.address);
      const { tx } = await confirm(r.connect(conn.signer).setFailureThreshold(releaseId, threshold));
      const state = ROLLOUT_STATES[Number((await r.rolloutStatus(releaseId)).state)];
      ctx.output(
        { releaseId, policy: address, previous: Number(status.failureThreshold), threshold, failures: Number(status.failures), state, tx },
        `the rollout of ${releaseId} halts at ${threshold} failures (was ${status.failureThreshold}; ${status.failures} so far); state ${state}\n${describeTx(tx)}`,
      );
    });

  rollout
    .command("status <releaseId>")
    .description("where the rollout stands: state, failures and threshold, and each wave, open or not yet by the chain's time")
    .option("--policy <address>", "the StagedRollout (default: the one in the policy attached to the release)")
    .action(async (releaseText: string, o: { policy?: string }) => {
      const releaseId = parseBytes32(releaseText, "release id");
      const policyOption = o.policy === undefined ? undefined : parseAddress(o.policy, "--policy");
      const conn = await ctx.connectReadOnly();
      const address = await policyOfRelease(conn, releaseId, "staged-rollout", policyOption);
      const r = StagedRollout__factory.connect(address, conn.provider);
      const [status, waves, chainTime] = await Promise.all([r.rolloutStatus(releaseId), r.rolloutWaves(releaseId), chainNow(conn.provider)]);
      const state = ROLLOUT_STATES[Number(status.state)];
      const shown = waves.map((w, index) => ({ index, cohortRoot: w.cohortRoot, startsAt: iso(Number(w.startsAt)), open: Number(w.startsAt) <= chainTime }));
      const result = {
        releaseId,
        policy: address,
        state,
        failures: Number(status.failures),
        failureThreshold: Number(status.failureThreshold),
        paused: status.paused,
        aborted: status.aborted,
        openWaves: Number(status.openWaves),
        nextWaveAt: Number(status.nextWaveAt) === 0 ? null : iso(Number(status.nextWaveAt)),
        chainTime: iso(chainTime),
        waves: shown,
      };
      ctx.output(
        result,
        state === "none"
          ? `release ${releaseId} has no rollout on ${address} (a StagedRollout refuses every device until one is created)`
          : [
              `rollout of ${releaseId} on ${address}: ${state}`,
              `  failures  ${result.failures} of ${result.failureThreshold} (halts at the threshold)`,
              `  waves     ${result.openWaves} of ${shown.length} open at the chain's time ${result.chainTime}`,
              ...shown.map((w) => `    ${w.index}  ${w.open ? "open        " : "not yet open"}  from ${w.startsAt}  root ${w.cohortRoot}`),
            ].join("\n"),
      );
    });
}

// ---------------------------------------------------------------- rollout create

async function createRollout(ctx: CliContext, releaseText: string, o: CreateOptions): Promise<void> {
  const releaseId = parseBytes32(releaseText, "release id");
  const threshold = parseCount(o.threshold, "--threshold");
  const policyOption = o.policy === undefined ? undefined : parseAddress(o.policy, "--policy");
  if (o.wave.length > MAX_WAVES) throw new InputError("INVALID_INPUT", `--wave: ${o.wave.length} waves, above the StagedRollout's limit of ${MAX_WAVES}`);
  const target = o.tracker === false ? undefined : trackerTargetOf(await ctx.config(), o.tracker);
  const waves = await readWaves(ctx, o.wave);
  const cohorts = waves.map((w) => buildCohort(w.deviceIds));

  const conn = await ctx.connect();
  const now = await chainNow(conn.provider);
  const starts = waves.map((w, i) => (w.start === undefined ? now : parseStartTime(w.start, now, `--wave ${i} (${w.file}) start`)));
  starts.forEach((s, i) => {
    if (i > 0 && s < starts[i - 1]) {
      throw new InputError(
        "WAVES_OUT_OF_ORDER",
        `--wave ${i} (${waves[i].file}) starts at ${iso(s)}, before wave ${i - 1} (${iso(starts[i - 1])}): give the waves in the order they open`,
        {
          details: { index: i, startsAt: s, previous: starts[i - 1] },
        },
      );
    }
  });
  const address = await policyOfRelease(conn, releaseId, "staged-rollout", policyOption);
  const r = StagedRollout__factory.connect(address, conn.signer);
  if ((await r.rolloutStatus(releaseId)).state !== 0n) {
    throw new OtaError(
      "ROLLOUT_EXISTS",
      `release ${releaseId} already has a rollout on ${address} (one per release, even after an abort): see \`ota-ledger rollout status ${releaseId}\``,
      {
        details: { releaseId, policy: address },
      },
    );
  }
  await requireAdministrator(conn.registry, conn.signer.address);

  const { tx } = await confirm(
    r.createRollout(
      releaseId,
      cohorts.map((c, i) => ({ cohortRoot: c.root, startsAt: starts[i] })),
      threshold,
    ),
  );
  const shown = cohorts.map((c, index) => ({ index, devices: c.deviceIds.length, cohortRoot: c.root, startsAt: iso(starts[index]), file: waves[index].file }));
  const retry = [
    "ota-ledger rollout cohorts",
    releaseId,
    ...waves.map((w) => `--wave ${quote(w.file)}`),
    ...(policyOption ? [`--policy ${policyOption}`] : []),
    ...(o.tracker ? [`--tracker ${o.tracker}`] : []),
  ].join(" ");
  let handed: { tracker: string; devices: number } | null = null;
  if (target) {
    try {
      handed = { tracker: target.url, devices: (await sendCohorts(conn, target, releaseId, cohorts)).devices };
    } catch (err) {
      throw new OtaError(
        "COHORTS_NOT_SENT",
        `the rollout of ${releaseId} IS on the ledger (tx ${tx.hash}), but its cohorts did not reach the tracker: ${(err as Error).message}. Send them again with \`${retry}\``,
        { cause: err, details: { releaseId, tx, retry } },
      );
    }
  }
  ctx.output(
    { releaseId, policy: address, failureThreshold: threshold, waves: shown, tracker: handed, tx },
    [
      `created the rollout of ${releaseId} on ${address}: ${shown.length} wave(s), halts at ${threshold} failure(s)`,
      ...shown.map((w) => `  wave ${w.index}  ${String(w.devices).padStart(5)} device(s)  from ${w.startsAt}  root ${w.cohortRoot}`),
      describeTx(tx),
      handed
        ? `cohorts handed to the tracker at ${handed.tracker} (${handed.devices} devices)`
        : `cohorts not handed to a tracker (--no-tracker): before devices need their proofs, run \`${retry} --tracker <url>\``,
    ].join("\n"),
  );
}

// ---------------------------------------------------------------- shared

async function readWaves(ctx: CliContext, specs: string[]): Promise<{ file: string; start?: string; deviceIds: string[] }[]> {
  if (specs.length === 0) throw new InputError("INVALID_INPUT", "--wave: give at least one wave: --wave <devices-file>[@<start>]");
  const waves = [];
  for (const spec of specs) {
    const { file, start } = parseWaveOption(spec);
    waves.push({ file, start, deviceIds: await readDevicesFile(ctx.io.cwd, file) });
  }
  return waves;
}

/** Hands the cohorts to the tracker, signed by the administrator, and checks it built the same roots. */
async function sendCohorts(
  conn: Pick<Connection, "signer">,
  target: ReturnType<typeof trackerTargetOf>,
  releaseId: string,
  cohorts: Cohort[],
): Promise<{ devices: number; roots: string[] }> {
  const answer = await trackerPostSigned<{ releaseId?: string; devices?: number; roots?: string[] }>(conn.signer, target, `/v1/rollouts/${releaseId}/cohorts`, {
    waves: cohorts.map((c) => c.deviceIds),
  });
  const roots = cohorts.map((c) => c.root);
  const theirs = Array.isArray(answer.roots) ? answer.roots.map((x) => String(x).toLowerCase()) : [];
  if (theirs.length !== roots.length || theirs.some((x, i) => x !== roots[i])) {
    throw new OtaError(
      "TRACKER_ROOT_MISMATCH",
      `the tracker at ${target.url} built the roots ${theirs.join(", ") || "(none)"}, not ${roots.join(", ")}: it holds other cohorts than the rollout's`,
      {
        details: { expected: roots, answered: theirs },
      },
    );
  }
  return { devices: Number(answer.devices), roots };
}

async function openRollout(
  ctx: CliContext,
  releaseText: string,
  policyText: string | undefined,
): Promise<{ conn: Connection; releaseId: string; rollout: StagedRollout; address: string }> {
  const releaseId = parseBytes32(releaseText, "release id");
  const policyOption = policyText === undefined ? undefined : parseAddress(policyText, "--policy");
  const conn = await ctx.connect();
  const address = await policyOfRelease(conn, releaseId, "staged-rollout", policyOption);
  return { conn, releaseId, rollout: StagedRollout__factory.connect(address, conn.provider), address };
}

/** Refuses, before sending, an administrator action on a rollout that does not exist or was aborted. */
function requireLive(status: { state: bigint; aborted: boolean }, releaseId: string, address: string): void {
  if (status.state === 0n)
    throw new OtaError(
      "NO_ROLLOUT",
      `release ${releaseId} has no rollout on ${address}: create it first (ota-ledger rollout create ${releaseId} --wave <devices-file>)`,
    );
  if (status.aborted)
    throw new OtaError("ROLLOUT_ABORTED", `the rollout of ${releaseId} was aborted: nothing more can be changed (publish a new release for a new rollout)`);
}

/** The chain's time: the latest block's timestamp, which the StagedRollout compares start times with. */
async function chainNow(provider: Provider | ReadOnlyConnection["provider"]): Promise<number> {
  const block = await provider.getBlock("latest");
  if (!block) throw new OtaError("RPC_UNREACHABLE", "the RPC gave no latest block");
  return block.timestamp;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

function quote(text: string): string {
  return /^[\w./@:+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
