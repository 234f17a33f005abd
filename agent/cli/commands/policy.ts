import path from "node:path";
import type { Command } from "commander";
import { AbiCoder, Contract, FunctionFragment, getAddress, ZeroHash, type BaseContract, type Provider } from "ethers";
import type { CliContext, Connection } from "../context";
import { InputError, OtaError } from "../../core/errors";
import {
  AllOfPolicy__factory,
  AnyOfPolicy__factory,
  ApprovalPolicy__factory,
  LocationPolicy__factory,
  MaintenanceWindowPolicy__factory,
  StagedRollout__factory,
} from "../../chain/contracts";
import {
  DEPLOYABLE_KINDS,
  KIND_NAMES,
  ROLLOUT_STATES,
  aKind,
  attachedTo,
  identifyPolicy,
  labelText,
  parseTarget,
  requireAdministrator,
  requireKind,
  requirePolicies,
  requireUpdatePolicy,
  resolveTarget,
  type DeployableKind,
  type PolicyInfo,
  type PolicyTarget,
} from "../policyLookup";
import { EVERY_DAY, formatMinute, formatWeekdays, parseAddress, parseBytes32, parseCount, parseLabel, parseWeekdays, parseWindow } from "../parse";
import { confirm, confirmDeployment, describeTx } from "../transactions";
import { checkDevicePolicy, policyCheckLines } from "../policyCheck";
import { fetchRelease } from "../../chain/releaseEvents";
import { isEvidence, MAX_EVIDENCE_BYTES } from "../../core/installedContext";
import { EVERY_POLICY, isEnvelope, withEvidencePart } from "../../core/policyEvidence";
import { buildCohort, encodeListedEvidence } from "../../crypto/cohortTree";
import { readDevicesFile } from "../cohortFiles";
import { evidenceBatches, readEvidenceFile, writeEvidenceFile } from "../evidenceFiles";
import { trackerPostSigned, trackerTargetOf } from "../trackerClient";
import { loadDeviceConfig } from "../../consumer/deviceConfig";
import { AgentMemory } from "../../consumer/agentMemory";
import { lockFolder } from "../../files/pidLock";
import { StagedRolloutFinder } from "../../chain/stagedRollouts";

/** The limits of the shipped policies' constructors and setters (contracts/policies). */
const MAX_APPROVERS = 16; // ApprovalPolicy.MAX_APPROVERS
const MAX_MEMBERS = 8; // ComposedPolicy.MAX_MEMBERS
const MAX_LABELS = 32; // LocationPolicy.MAX_LABELS

interface DeployOptions {
  approver: string[];
  threshold?: string;
  window?: string;
  days?: string;
  member: string[];
}

interface TargetOptions {
  component?: string;
  release?: string;
}

interface LocationOptions extends TargetOptions {
  allowRegion: string[];
  denyRegion: string[];
  allowNetwork: string[];
  denyNetwork: string[];
}

/**
 * Administrators' commands on update policies (X.1368 App. II, APP-II-3; ADR 0005): deploy the
 * shipped policies, attach them to components and releases, show what decides, and set the rules
 * of location policies (CAP-11.3-h) and maintenance windows.
 */
export function register(program: Command, ctx: CliContext): void {
  const policy = program.command("policy").description("update policies: deploy, attach to components and releases, show, set their rules");

  policy
    .command("deploy <kind>")
    .description(`deploy a policy with the configured account; <kind> is one of ${DEPLOYABLE_KINDS.join(", ")}`)
    .option("--approver <address>", "approval: an approver (repeat for several)", collect, [])
    .option("--threshold <m>", "approval: how many approvers a release needs")
    .option("--window <HH:MM-HH:MM>", "maintenance-window: the UTC window (may wrap midnight; equal bounds: the whole day)")
    .option("--days <days>", "maintenance-window: mon,tue,... or ranges (mon-fri), or all (default)")
    .option("--member <address>", "all-of / any-of: a member policy, in the order asked (repeat for several)", collect, [])
    .action(async (kindText: string, o: DeployOptions) => deployPolicy(ctx, kindText, o));

  targetOptions(
    policy.command("attach <policy>").description("attach a policy to a component or to one release (a release's own policy replaces its component's)"),
  ).action(async (policyText: string, o: TargetOptions) => {
    const address = parseAddress(policyText, "policy address");
    parseTarget(o);
    const conn = await ctx.connect();
    const policies = requirePolicies(conn);
    const target = await resolveTarget(conn.registry, o);
    await requireAdministrator(conn.registry, conn.signer.address);
    await requireUpdatePolicy(conn.provider, address, "policy address");
    const replaced = (await attachedTo(policies, target.id)) ?? null;
    const info = await identifyPolicy(conn.provider, address);
    const { tx } = await confirm(policies.attachPolicy(target.id, address));
    ctx.output(
      { target, policy: { address, kind: info.kind }, replaced, tx },
      [`attached ${address} (${KIND_NAMES[info.kind]}) to ${describeTarget(target)}`, ...(replaced ? [`  replaces ${replaced}`] : []), describeTx(tx)].join(
        "\n",
      ),
    );
  });

  targetOptions(policy.command("detach").description("remove the policy attached to a component or to one release")).action(async (o: TargetOptions) => {
    parseTarget(o);
    const conn = await ctx.connect();
    const policies = requirePolicies(conn);
    const target = await resolveTarget(conn.registry, o);
    await requireAdministrator(conn.registry, conn.signer.address);
    const attached = await attachedTo(policies, target.id);
    if (!attached) {
      throw new OtaError(
        "NOTHING_ATTACHED",
        `${describeTarget(target)} has no policy of its own attached: nothing to detach (ota-ledger policy show shows what decides)`,
        {
          details: { target: target.id },
        },
      );
    }
    const { tx } = await confirm(policies.detachPolicy(target.id));
    ctx.output({ target, detached: attached, tx }, `detached ${attached} from ${describeTarget(target)}\n${describeTx(tx)}`);
  });

  targetOptions(policy.command("show").description("the policy that decides for a component or a release, what kind it is and its settings")).action(
    async (o: TargetOptions) => {
      parseTarget(o);
      const conn = await ctx.connectReadOnly();
      const policies = requirePolicies(conn);
      const target = await resolveTarget(conn.registry, o);
      const own = await attachedTo(policies, target.id);
      const effective = own ?? (target.type === "release" ? await attachedTo(policies, target.component) : undefined);
      if (!effective) {
        ctx.output({ target, policy: null }, `${describeTarget(target)}: no policy attached (the registry's installable check alone decides)`);
        return;
      }
      const view = await describePolicy(conn.provider, await identifyPolicy(conn.provider, effective), target);
      const from = own ? target.type : "component";
      ctx.output(
        { target, policy: { ...view, attachedTo: from } },
        [`${describeTarget(target)}`, ...policyLines(view, "  ", from === target.type ? "" : " (its component's)")].join("\n"),
      );
    },
  );

  policy
    .command("check")
    .description(
      "whether a device may take a release now, asked of the ledger as the device asks it, and if not which policy refused and why (its reason's name, or the error it reverted with)",
    )
    .requiredOption("--release <id>", "the release id (0x + 64 hex digits)")
    .requiredOption("--device-config <file>", "the device's device.json: its ledger record, and in its data folder what it runs and the evidence it holds")
    .option("--evidence <hex>", `evidence to ask with instead of the device's own (0x + hex, at most ${MAX_EVIDENCE_BYTES} bytes)`)
    .action(async (o: { release: string; deviceConfig: string; evidence?: string }) => {
      const releaseId = parseBytes32(o.release, "--release");
      if (o.evidence !== undefined && !isEvidence(o.evidence))
        throw new InputError("INVALID_INPUT", `--evidence: give 0x and an even number of hex digits, at most ${MAX_EVIDENCE_BYTES} bytes`);
      const conn = await ctx.connectReadOnly();
      const answer = await checkDevicePolicy(conn, path.resolve(ctx.io.cwd, o.deviceConfig), releaseId, o.evidence);
      ctx.output(answer, policyCheckLines(answer).join("\n"));
    });

  policy
    .command("allowlist")
    .description("build an allowlist of devices as a Merkle tree: print its root (for the policy) and write each device's proof, the evidence it brings")
    .requiredOption("--devices <file>", "the devices: one device id or label per line (# comments), or a JSON array")
    .requiredOption("--out <file>", 'where to write the evidence file: {"root", "devices": {"0x<deviceId>": "0x<evidence>"}}')
    .action(async (o: { devices: string; out: string }) => {
      const tree = buildCohort(await readDevicesFile(ctx.io.cwd, o.devices));
      const devices = Object.fromEntries(tree.deviceIds.map((id, i) => [id.toLowerCase(), encodeListedEvidence(tree.proofs[i])]));
      const file = await writeEvidenceFile(ctx.io.cwd, o.out, { root: tree.root, devices });
      ctx.output(
        { root: tree.root, devices: tree.deviceIds.length, file },
        [
          `allowlist root ${tree.root} (${tree.deviceIds.length} device(s)); each device's proof written to ${file}`,
          "next: set the root on the policy (an administrator's transaction), then hand each device its proof:",
          `  ota-ledger policy evidence --release <id> --policy <address> --file ${o.out}`,
        ].join("\n"),
      );
    });

  policy
    .command("evidence")
    .description(
      "hand devices the evidence a release's policy needs (an allowlist proof...): to the tracker, which gives it out with its notices, or into one device's state (--device-config)",
    )
    .requiredOption("--release <id>", "the release id (0x + 64 hex digits)")
    .requiredOption("--file <file>", 'the evidence file: {"devices": {"0x<deviceId>": "0x<evidence>"}} (policy allowlist writes one)')
    .option("--policy <address>", "the policy it is for, within the release's composition (each policy then reads its own part); default: every policy")
    .option("--tracker <url>", "the tracker to hand it to (overrides tracker.url / OTA_TRACKER_URL)")
    .option("--device-config <file>", "instead of a tracker, write the device's own entry into its agent state (the device agent must be stopped)")
    .action(async (o: { release: string; file: string; policy?: string; tracker?: string; deviceConfig?: string }) => {
      const releaseId = parseBytes32(o.release, "--release").toLowerCase();
      const forPolicy = o.policy === undefined ? EVERY_POLICY : getAddress(parseAddress(o.policy, "--policy"));
      if (o.deviceConfig !== undefined && o.tracker !== undefined)
        throw new InputError("INVALID_INPUT", "give --tracker or --device-config, not both: the evidence goes to a tracker or into one device's state");
      const file = await readEvidenceFile(ctx.io.cwd, o.file);
      if (o.deviceConfig === undefined) {
        const conn = await ctx.connect();
        const target = trackerTargetOf(await ctx.config(), o.tracker);
        // In requests of at most 8 MiB each (a tracker takes bodies of up to 16 MiB), each signed.
        let devices = 0;
        for (const batch of evidenceBatches(file.devices)) {
          try {
            const answer = await trackerPostSigned<{ devices?: number }>(conn.signer, target, `/v1/releases/${releaseId}/evidence`, {
              ...(forPolicy === EVERY_POLICY ? {} : { policy: forPolicy }),
              devices: batch,
            });
            devices += Number(answer.devices);
          } catch (err) {
            if (devices > 0 && err instanceof OtaError)
              err.message += ` (the tracker took the evidence of the first ${devices} device(s) of the file; sending the file again is safe)`;
            throw err;
          }
        }
        ctx.output(
          { releaseId, policy: forPolicy || null, tracker: target.url, devices },
          `handed the evidence of ${devices} device(s) for release ${releaseId} (${forPolicy ? `policy ${forPolicy}` : "every policy"}) to the tracker at ${target.url}: each device gets it with its notices`,
        );
        return;
      }
      const d = await loadDeviceConfig(path.resolve(ctx.io.cwd, o.deviceConfig));
      const deviceId = d.credential.record.id.toLowerCase();
      const mine = file.devices[deviceId];
      if (mine === undefined)
        throw new InputError("DEVICE_NOT_IN_FILE", `evidence file ${o.file} holds no evidence for device ${deviceId} (the device of ${o.deviceConfig})`);
      if (forPolicy !== EVERY_POLICY) await requireInReleasePolicy(await ctx.connectReadOnly(), releaseId, forPolicy);
      const lock = await lockFolder(d.dataDir, "policy evidence (the device agent must be stopped while its state is written)");
      try {
        const memory = await AgentMemory.open(path.join(d.dataDir, "agent-state.json"));
        const held = memory.evidence.get(releaseId);
        if (forPolicy !== EVERY_POLICY && held !== undefined && held !== "0x" && !isEnvelope(held))
          throw new InputError(
            "EVIDENCE_CONFLICT",
            `device ${deviceId} holds evidence for every policy of release ${releaseId} (${(held.length - 2) / 2} bytes), which a part for ${forPolicy} would replace: give each policy's evidence with --policy, or this one without`,
          );
        const evidence = withEvidencePart(held, forPolicy, mine);
        await memory.holdEvidence(releaseId, evidence);
        ctx.output(
          { releaseId, policy: forPolicy || null, deviceId, evidence },
          `device ${deviceId} now holds evidence for release ${releaseId} (${forPolicy ? `policy ${forPolicy}` : "every policy"}, ${(evidence.length - 2) / 2} bytes): it brings it to the policy from its next run`,
        );
      } finally {
        await lock.release();
      }
    });

  for (const kind of ["call", "send"] as const) {
    policy
      .command(`${kind} <policy> <function> [args...]`)
      .description(
        kind === "call"
          ? 'read a view of a policy, one of your own included: <function> is its signature with what it returns, e.g. "allowlistRoot() returns (bytes32)"'
          : "send an administrator's transaction to a policy's own function, which the CLI has no command for: e.g. \"setAllowlist(bytes32)\" 0x<root>",
      )
      .addHelpText("after", '\nArguments: numbers and addresses as text, arrays and structs as JSON (e.g. \'["0x..", "0x.."]\'), booleans as true or false.')
      .action(async (policyText: string, signature: string, args: string[]) => {
        const address = getAddress(parseAddress(policyText, "policy address"));
        const fn = parseFunction(signature);
        const values = parseArguments(fn, args);
        if (kind === "call") {
          const conn = await ctx.connectReadOnly();
          await requireCode(conn.provider, address);
          const result = (await new Contract(address, [fn], conn.provider).getFunction(fn.format("sighash")).staticCallResult(...values)) as unknown[];
          const answer = [...result].map(plain);
          ctx.output(
            { policy: address, function: fn.format("sighash"), result: answer },
            answer.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join("\n"),
          );
          return;
        }
        const conn = await ctx.connect();
        await requireCode(conn.provider, address);
        const contract = new Contract(address, [fn], conn.signer);
        const { tx } = await confirm(contract.getFunction(fn.format("sighash")).send(...values));
        ctx.output({ policy: address, function: fn.format("sighash"), tx }, `${fn.format("sighash")} sent to ${address}\n${describeTx(tx)}`);
      });
  }

  const location = policy.command("location").description("rules of a location policy (CAP-11.3-h): allowed and denied regions and networks");
  targetOptions(
    location
      .command("set <policy>")
      .description("set the rule of a component or a release, replacing its earlier rule")
      .option("--allow-region <label>", "a region or group allowed (repeat; none: every region not denied)", collect, [])
      .option("--deny-region <label>", "a region or group denied (repeat)", collect, [])
      .option("--allow-network <label>", "a network allowed (repeat; none: every network not denied)", collect, [])
      .option("--deny-network <label>", "a network denied (repeat)", collect, []),
  ).action(async (policyText: string, o: LocationOptions) => {
    const address = parseAddress(policyText, "policy address");
    parseTarget(o);
    const rule = parseLocationRule(o);
    const conn = await ctx.connect();
    const target = await resolveTarget(conn.registry, o);
    await requireKind(conn.provider, address, "location", "policy address");
    await requireAdministrator(conn.registry, conn.signer.address);
    const { tx } = await confirm(LocationPolicy__factory.connect(address, conn.signer).setRule(target.id, rule));
    const shown = showRule(rule);
    ctx.output(
      { policy: address, target, rule: shown, tx },
      [`location rule of ${describeTarget(target)} in ${address}`, ...ruleLines(shown, "  "), describeTx(tx)].join("\n"),
    );
  });
  targetOptions(location.command("clear <policy>").description("remove the rule of a component or a release (a release falls back to its component's)")).action(
    async (policyText: string, o: TargetOptions) => {
      const address = parseAddress(policyText, "policy address");
      parseTarget(o);
      const conn = await ctx.connect();
      const target = await resolveTarget(conn.registry, o);
      await requireKind(conn.provider, address, "location", "policy address");
      await requireAdministrator(conn.registry, conn.signer.address);
      const located = LocationPolicy__factory.connect(address, conn.signer);
      const [exists] = await located.rule(target.id);
      if (!exists)
        throw new OtaError("NO_RULE", `${describeTarget(target)} has no rule in the location policy ${address}: nothing to clear`, {
          details: { target: target.id },
        });
      const { tx } = await confirm(located.clearRule(target.id));
      ctx.output({ policy: address, target, cleared: true, tx }, `cleared the location rule of ${describeTarget(target)} in ${address}\n${describeTx(tx)}`);
    },
  );

  const windowGroup = policy.command("window").description("the window of a maintenance-window policy");
  windowGroup
    .command("set <policy>")
    .description("replace the window; what is not given stays as it is")
    .option("--window <HH:MM-HH:MM>", "the UTC window (may wrap midnight; equal bounds: the whole day)")
    .option("--days <days>", "mon,tue,... or ranges (mon-fri), or all")
    .action(async (policyText: string, o: { window?: string; days?: string }) => {
      const address = parseAddress(policyText, "policy address");
      if (o.window === undefined && o.days === undefined) throw new InputError("INVALID_INPUT", "give --window HH:MM-HH:MM, --days, or both");
      const window = o.window === undefined ? undefined : parseWindow(o.window);
      const days = o.days === undefined ? undefined : parseWeekdays(o.days);
      const conn = await ctx.connect();
      await requireKind(conn.provider, address, "maintenance-window", "policy address");
      await requireAdministrator(conn.registry, conn.signer.address);
      const policyContract = MaintenanceWindowPolicy__factory.connect(address, conn.signer);
      const [startMinute, endMinute, weekdays] = await policyContract.window();
      const next = {
        startMinute: window?.startMinute ?? Number(startMinute),
        endMinute: window?.endMinute ?? Number(endMinute),
        weekdays: days ?? Number(weekdays),
      };
      const { tx } = await confirm(policyContract.setWindow(next.startMinute, next.endMinute, next.weekdays));
      const shown = showWindow(next.startMinute, next.endMinute, next.weekdays);
      ctx.output({ policy: address, ...shown, tx }, `maintenance window of ${address}: ${shown.window} UTC on ${shown.days}\n${describeTx(tx)}`);
    });
}

// ---------------------------------------------------------------- policy deploy

async function deployPolicy(ctx: CliContext, kindText: string, o: DeployOptions): Promise<void> {
  const kind = kindText.trim() as DeployableKind;
  if (!DEPLOYABLE_KINDS.includes(kind)) {
    throw new InputError("INVALID_INPUT", `policy kind: "${kindText}" is not a kind this tool deploys: give one of ${DEPLOYABLE_KINDS.join(", ")}`, {
      details: { kinds: DEPLOYABLE_KINDS },
    });
  }
  const given = (name: string, value: unknown) => (Array.isArray(value) ? value.length > 0 : value !== undefined) && name;
  const wrong = [
    given("--approver", o.approver),
    given("--threshold", o.threshold),
    given("--window", o.window),
    given("--days", o.days),
    given("--member", o.member),
  ]
    .filter((n): n is string => typeof n === "string")
    .filter((n) => !APPLIES[kind].includes(n));
  if (wrong.length > 0)
    throw new InputError(
      "INVALID_INPUT",
      `${wrong.join(", ")} ${wrong.length > 1 ? "do" : "does"} not apply to ${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind} policy${APPLIES[kind].length ? ` (it takes ${APPLIES[kind].join(", ")})` : " (it takes no options)"}`,
    );

  let deploy: (conn: Connection) => Promise<BaseContract>;
  let settings: Record<string, unknown> = {};
  if (kind === "approval") {
    const approvers = parseApprovers(o.approver);
    if (o.threshold === undefined)
      throw new InputError("INVALID_INPUT", `--threshold: missing: give how many of the ${approvers.length} approvers a release needs`);
    const threshold = parseCount(o.threshold, "--threshold", 1, approvers.length);
    settings = { approvers, threshold };
    deploy = (c) => new ApprovalPolicy__factory(c.signer).deploy(c.registry.target, approvers, threshold);
  } else if (kind === "maintenance-window") {
    if (o.window === undefined) throw new InputError("INVALID_INPUT", "--window: missing: give the UTC window as HH:MM-HH:MM, e.g. 22:00-02:00");
    const { startMinute, endMinute } = parseWindow(o.window);
    const weekdays = o.days === undefined ? EVERY_DAY : parseWeekdays(o.days);
    settings = showWindow(startMinute, endMinute, weekdays);
    deploy = (c) => new MaintenanceWindowPolicy__factory(c.signer).deploy(c.registry.target, startMinute, endMinute, weekdays);
  } else if (kind === "all-of" || kind === "any-of") {
    const members = parseMembers(o.member);
    settings = { members };
    const factory = kind === "all-of" ? AllOfPolicy__factory : AnyOfPolicy__factory;
    deploy = async (c) => {
      for (const m of members) await requireUpdatePolicy(c.provider, m, "--member");
      return new factory(c.signer).deploy(members);
    };
  } else if (kind === "location") {
    deploy = (c) => new LocationPolicy__factory(c.signer).deploy(c.registry.target);
  } else {
    deploy = (c) => new StagedRollout__factory(c.signer).deploy(c.registry.target, c.fleet.target);
  }
  const conn = await ctx.connect();
  const { address, tx } = await confirmDeployment(deploy(conn));
  ctx.output(
    { policy: { address, kind, ...settings }, tx },
    [
      `deployed ${aKind(kind)} at ${address}`,
      ...Object.entries(settings).map(([k, v]) => `  ${k.padEnd(10)}${Array.isArray(v) ? v.join(", ") : String(v)}`),
      describeTx(tx),
      `attach it with \`ota-ledger policy attach ${address} --component <name>\` (or --release <id>)`,
    ].join("\n"),
  );
}

const APPLIES: Record<DeployableKind, string[]> = {
  "staged-rollout": [],
  location: [],
  approval: ["--approver", "--threshold"],
  "maintenance-window": ["--window", "--days"],
  "all-of": ["--member"],
  "any-of": ["--member"],
};

function parseApprovers(texts: string[]): string[] {
  if (texts.length === 0) throw new InputError("INVALID_INPUT", "--approver: missing: give at least one approver (repeat --approver for several)");
  if (texts.length > MAX_APPROVERS)
    throw new InputError("INVALID_INPUT", `--approver: ${texts.length} approvers, above the policy's limit of ${MAX_APPROVERS}`);
  return unique(
    texts.map((t) => parseAddress(t, "--approver")),
    "--approver",
    "approver",
  );
}

function parseMembers(texts: string[]): string[] {
  if (texts.length === 0 || texts.length > MAX_MEMBERS) {
    throw new InputError("INVALID_INPUT", `--member: ${texts.length} members: a composer takes 1 to ${MAX_MEMBERS} member policies (repeat --member)`);
  }
  return unique(
    texts.map((t) => parseAddress(t, "--member")),
    "--member",
    "member",
  );
}

function unique(values: string[], what: string, noun: string): string[] {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new InputError("INVALID_INPUT", `${what}: ${v} is given twice: list each ${noun} once`, { details: { what, input: v } });
    seen.add(v);
  }
  return values;
}

// ---------------------------------------------------------------- location rules

interface Rule {
  allowedRegions: string[];
  deniedRegions: string[];
  allowedNetworks: string[];
  deniedNetworks: string[];
}

/** The rule from the options, checked as LocationPolicy.setRule checks it. */
function parseLocationRule(o: LocationOptions): Rule {
  const list = (texts: string[], what: string) => {
    if (texts.length > MAX_LABELS) throw new InputError("INVALID_INPUT", `${what}: ${texts.length} labels, above the policy's limit of ${MAX_LABELS} per list`);
    return unique(
      texts.map((t) => parseLabel(t, what)),
      what,
      "label",
    );
  };
  const rule = {
    allowedRegions: list(o.allowRegion, "--allow-region"),
    deniedRegions: list(o.denyRegion, "--deny-region"),
    allowedNetworks: list(o.allowNetwork, "--allow-network"),
    deniedNetworks: list(o.denyNetwork, "--deny-network"),
  };
  for (const [allowed, denied, dimension] of [
    [rule.allowedRegions, rule.deniedRegions, "region"],
    [rule.allowedNetworks, rule.deniedNetworks, "network"],
  ] as const) {
    const both = allowed.find((l) => denied.includes(l));
    if (both) throw new InputError("INVALID_INPUT", `${dimension} "${labelText(both)}" is both allowed and denied: give it in one list only`);
  }
  return rule;
}

function showRule(rule: Rule) {
  return {
    allowedRegions: rule.allowedRegions.map(labelText),
    deniedRegions: rule.deniedRegions.map(labelText),
    allowedNetworks: rule.allowedNetworks.map(labelText),
    deniedNetworks: rule.deniedNetworks.map(labelText),
  };
}

function ruleLines(r: ReturnType<typeof showRule>, indent: string): string[] {
  const list = (l: string[], empty: string) => (l.length ? l.join(", ") : empty);
  return [
    `${indent}regions   allow ${list(r.allowedRegions, "any")}; deny ${list(r.deniedRegions, "none")}`,
    `${indent}networks  allow ${list(r.allowedNetworks, "any")}; deny ${list(r.deniedNetworks, "none")}`,
  ];
}

// ---------------------------------------------------------------- policy show

function showWindow(startMinute: number, endMinute: number, weekdays: number) {
  return { window: `${formatMinute(startMinute)}-${formatMinute(endMinute)}`, days: formatWeekdays(weekdays) };
}

interface PolicyView extends Omit<PolicyInfo, "members"> {
  settings?: Record<string, unknown>;
  members?: PolicyView[];
}

/** A policy's settings as they bear on the target: each kind's own views. */
async function describePolicy(provider: Provider, info: PolicyInfo, target: PolicyTarget): Promise<PolicyView> {
  const members = info.members ? await Promise.all(info.members.map((m) => describePolicy(provider, m, target))) : undefined;
  const a = info.address;
  let settings: Record<string, unknown> | undefined;
  if (info.kind === "approval") {
    const p = ApprovalPolicy__factory.connect(a, provider);
    settings = { threshold: Number(await p.threshold()), approvers: await p.approvers() };
    if (target.type === "release") settings.approvals = Number(await p.approvalCount(target.id));
  } else if (info.kind === "maintenance-window") {
    const [s, e, d] = await MaintenanceWindowPolicy__factory.connect(a, provider).window();
    settings = showWindow(Number(s), Number(e), Number(d));
  } else if (info.kind === "location") {
    const p = LocationPolicy__factory.connect(a, provider);
    const decides = target.type === "release" ? await p.ruleTarget(target.id, target.component) : (await p.rule(target.id))[0] ? target.id : ZeroHash;
    if (decides === ZeroHash) settings = { rule: null };
    else {
      const [, r] = await p.rule(decides);
      settings = {
        ruleOf: decides === target.id ? target.type : "component",
        rule: showRule({
          allowedRegions: [...r.allowedRegions],
          deniedRegions: [...r.deniedRegions],
          allowedNetworks: [...r.allowedNetworks],
          deniedNetworks: [...r.deniedNetworks],
        }),
      };
    }
  } else if (info.kind === "staged-rollout" && target.type === "release") {
    const s = await StagedRollout__factory.connect(a, provider).rolloutStatus(target.id);
    settings = {
      rollout: ROLLOUT_STATES[Number(s.state)],
      waves: Number(s.waveCount),
      openWaves: Number(s.openWaves),
      failures: Number(s.failures),
      failureThreshold: Number(s.failureThreshold),
    };
  }
  return { address: a, kind: info.kind, ...(settings ? { settings } : {}), ...(members ? { members } : {}) };
}

function policyLines(v: PolicyView, indent: string, note = ""): string[] {
  const lines = [`${indent}policy  ${v.address} (${KIND_NAMES[v.kind]})${note}`];
  const s = v.settings;
  const more = indent + "        ";
  if (s && v.kind === "approval")
    lines.push(
      `${more}${s.approvals === undefined ? "" : `${s.approvals} of `}${s.threshold} approvals needed; approvers ${(s.approvers as string[]).join(", ")}`,
    );
  if (s && v.kind === "maintenance-window") lines.push(`${more}${s.window} UTC on ${s.days}`);
  if (s && v.kind === "location") lines.push(...(s.rule ? ruleLines(s.rule as ReturnType<typeof showRule>, more) : [`${more}no rule: every device allowed`]));
  if (s && v.kind === "staged-rollout")
    lines.push(`${more}rollout ${s.rollout}: ${s.openWaves} of ${s.waves} waves open, ${s.failures}/${s.failureThreshold} failures`);
  for (const m of v.members ?? []) lines.push(...policyLines(m, more));
  return lines;
}

function describeTarget(t: PolicyTarget): string {
  return t.type === "release" ? `release ${t.id}` : t.name ? `component "${t.name}" (${t.id})` : `component ${t.id}`;
}

function targetOptions(cmd: Command): Command {
  return cmd.option("--component <name|id>", "a component, by name or id").option("--release <id>", "one release, by id");
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `policy` must be the release's policy or one of its members (POLICY_NOT_ATTACHED otherwise), as the tracker checks it. */
async function requireInReleasePolicy(conn: Awaited<ReturnType<CliContext["connectReadOnly"]>>, releaseId: string, policy: string): Promise<void> {
  const policies = requirePolicies(conn);
  const heard = await fetchRelease(conn.registry, conn.domain, releaseId, conn.fromBlock);
  if (!heard) throw new InputError("UNKNOWN_RELEASE", `no release ${releaseId} is published on this registry from block ${conn.fromBlock}: check the id`);
  const attached = await policies.policyFor(releaseId, heard.record.component);
  await new StagedRolloutFinder(conn.provider).requirePartReader(attached, policy, releaseId);
}

/** A function's human-readable ABI signature, as `policy call` and `policy send` take it. */
function parseFunction(signature: string): FunctionFragment {
  try {
    return FunctionFragment.from(signature.trim().startsWith("function ") ? signature.trim() : `function ${signature.trim()}`);
  } catch (cause) {
    throw new InputError(
      "INVALID_INPUT",
      `"${signature}" is not a function signature: give its name and parameter types, e.g. "setAllowlist(bytes32)" or "allowlistRoot() returns (bytes32)"`,
      { cause },
    );
  }
}

/** The command line's arguments as the function's parameters take them (arrays and structs as JSON). */
function parseArguments(fn: FunctionFragment, args: string[]): unknown[] {
  if (args.length !== fn.inputs.length) {
    throw new InputError("INVALID_INPUT", `${fn.format("sighash")} takes ${fn.inputs.length} argument(s), ${args.length} given`);
  }
  const values = fn.inputs.map((input, i) => {
    const text = args[i];
    if (input.baseType === "array" || input.baseType === "tuple") {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new InputError("INVALID_INPUT", `argument ${i + 1} (${input.format()}) must be JSON, e.g. ["0x..", "0x.."]: ${text}`);
      }
    }
    if (input.baseType === "bool") {
      if (text !== "true" && text !== "false") throw new InputError("INVALID_INPUT", `argument ${i + 1} (bool) must be true or false: ${text}`);
      return text === "true";
    }
    return text;
  });
  try {
    AbiCoder.defaultAbiCoder().encode(fn.inputs, values);
  } catch (cause) {
    throw new InputError("INVALID_INPUT", `the arguments do not fit ${fn.format("sighash")}: ${(cause as Error).message.split(" (")[0]}`, { cause });
  }
  return values;
}

/** A result as JSON can carry it (big numbers as decimal text, nested results as lists). */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return [...value].map(plain);
  return value;
}

async function requireCode(provider: Provider, address: string): Promise<void> {
  if ((await provider.getCode(address)) === "0x") throw new InputError("NOT_A_CONTRACT", `${address} has no code on this chain: check the address`);
}
