import path from "node:path";
import type { DeviceRunner } from "../../agent/consumer/deviceRunner";
import { buildCohort } from "../../agent/crypto/cohortTree";
import { componentId } from "../../agent/core/release";
import { ROLLOUT_STATE, ledgerName } from "../../agent/core/ledgerCodes";
import { decodeRevert } from "../../agent/chain/revertReason";
import { signRelease } from "../../agent/crypto/releaseSignature";
import { findWitnesses } from "../../agent/chain/witnesses";
import { normalizeRelease, dependsOn } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { BOOTLOADER, FIRMWARE, type DemoLedger } from "./ledgerSetup";
import type { AgentChain, Services } from "./services";
import { countRunning, fleetState, type DemoDevice } from "./simulatedFleet";
import { hardwareNames, publishSample, type SampleRelease } from "./sampleRelease";
import type { AnchorProof } from "../../agent/tracker/statusAnchoring";
import { sleep, waitFor, type StoryLog } from "./storyLog";

export interface StoryCast {
  ledger: DemoLedger;
  chain: AgentChain;
  services: Services;
  devices: DemoDevice[];
  runner: DeviceRunner;
  /** The device that fetches from the compromised mirror of the firmware server. */
  tampered: DemoDevice;
  dir: string;
  /** Seconds between a rollout's two waves. */
  waveGapSeconds: number;
}

const CONVERGE_MS = 120_000;

/** The tracker's read API (the same one the dashboard uses). */
async function trackerGet<T>(s: Services, pathAndQuery: string): Promise<T> {
  const response = await fetch(s.hq.http.url.replace(/\/$/, "") + pathAndQuery);
  if (!response.ok) throw new Error(`tracker ${pathAndQuery}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function chainTime(c: StoryCast): Promise<number> {
  return (await c.chain.provider.getBlock("latest"))!.timestamp;
}

/** A staged rollout of `release`: on the ledger (the administrator) and its cohorts handed to the tracker. */
async function stageRollout(c: StoryCast, log: StoryLog, release: SampleRelease, waves: DemoDevice[][], threshold: number): Promise<number[]> {
  const now = await chainTime(c);
  const starts = waves.map((_, i) => now + i * c.waveGapSeconds);
  const cohorts = waves.map((w) => buildCohort(w.map((d) => d.id)));
  const rollout = c.ledger.rollout.connect(c.ledger.actors.admin);
  await (
    await rollout.createRollout(
      release.id,
      cohorts.map((co, i) => ({ cohortRoot: co.root, startsAt: starts[i] })),
      threshold,
    )
  ).wait();
  await c.services.hq.tracker.setRolloutCohorts(
    release.id,
    waves.map((w) => w.map((d) => d.id)),
  );
  waves.forEach((w, i) =>
    log.note(`wave ${i}: ${w.length} devices, cohort root ${cohorts[i].root.slice(0, 18)}…, opens ${i === 0 ? "now" : `in ${i * c.waveGapSeconds} s`}`),
  );
  log.note(`failure threshold ${threshold}: the rollout halts itself once the tracker has posted that many failures`);
  return starts;
}

/** Acts 3 to 7. Each checked step is recorded in `log`; nothing here throws for a step that misbehaved. */
export async function playStory(c: StoryCast, log: StoryLog): Promise<void> {
  const { ledger, services, devices } = c;
  const where = { dir: c.dir, serverUrl: services.serverUrl };
  const boot = componentId(BOOTLOADER).toLowerCase();

  // ------------------------------------------------------------------ act 3
  log.begin("factory", "the fleet runs its factory firmware; then every firmware release goes out in waves");
  const factory = await publishSample(ledger, { component: FIRMWARE, version: "1.0.0", size: 128 * 1024, hardware: [1, 2, 3] }, where);
  log.note(`${factory.label}, the factory image: published (gas ${factory.gasUsed}), submitted, keys granted`);
  let seen = await waitFor(
    () => fleetState(devices),
    (s) => countRunning(s, FIRMWARE, "1.0.0") === devices.length,
    CONVERGE_MS,
  );
  log.check(
    "every device runs the factory firmware 1.0.0",
    `${devices.length} devices`,
    `${countRunning(seen.value, FIRMWARE, "1.0.0")} of ${devices.length}`,
    seen.met,
  );
  await (await ledger.policies.connect(ledger.actors.admin).attachPolicy(componentId(FIRMWARE), await ledger.rollout.getAddress())).wait();
  log.note(`administrator attaches the StagedRollout to "${FIRMWARE}": from now on its releases go out in waves (APP-II-3)`);

  log.begin("publish", "the author publishes a bootloader and a firmware that depends on it");
  const bootloader = await publishSample(ledger, { component: BOOTLOADER, version: "1.0.0", size: 96 * 1024, hardware: [1, 2, 3] }, where);
  log.note(
    `${bootloader.label} for ${hardwareNames([1, 2, 3])}: signed, published (gas ${bootloader.gasUsed}), submitted to the firmware server, keys granted to every enrolled device`,
  );
  const refused = await refusedByRegistry(c, FIRMWARE, "3.0.0", [[BOOTLOADER, "^2.0.0"]]);
  log.check(
    "unmet dependency refused by the registry (APP-II-2)",
    "UpdateRegistryDependencyNotSatisfied",
    refused,
    refused === "UpdateRegistryDependencyNotSatisfied",
  );
  seen = await waitFor(
    () => fleetState(devices),
    (s) => s.filter((d) => d.running.get(boot) === "1.0.0").length === devices.length,
    CONVERGE_MS,
  );
  const bootCount = countRunning(seen.value, BOOTLOADER, "1.0.0");
  log.check(
    "bootloader 1.0.0 reaches the whole fleet (no policy on it)",
    `${devices.length} devices`,
    `${bootCount} of ${devices.length} devices in ${(seen.ms / 1000).toFixed(1)} s`,
    bootCount === devices.length,
  );

  // ------------------------------------------------------------------ act 4
  log.begin("rollout", "sensor-fw 2.0.0 moves the fleet in two waves; one device's download is tampered with");
  c.services.mirror.tampering = true;
  log.note(`${c.tampered.name} fetches from a compromised mirror of the firmware server, which now flips one byte of every artifact it serves`);
  const firmware = await publishSample(
    ledger,
    { component: FIRMWARE, version: "2.0.0", size: 160 * 1024, hardware: [1, 2, 3], depends: [[BOOTLOADER, "^1.0.0"]] },
    where,
  );
  log.note(`${firmware.label}, needs ${BOOTLOADER} ^1.0.0: published (gas ${firmware.gasUsed}), submitted, keys granted`);
  const firstWave = [c.tampered, ...devices.filter((d) => d !== c.tampered && d.index % 5 === 1)];
  const secondWave = devices.filter((d) => !firstWave.includes(d));
  const starts = await stageRollout(c, log, firmware, [firstWave, secondWave], 5);
  const fw = componentId(FIRMWARE).toLowerCase();
  // A mirror's wrong bytes are a blocked delivery (issue 15): refused against the ledger's Merkle
  // root, retried, never counted as a failed release.
  const tamperRefusal = () => c.tampered.log.find((l) => l.includes(firmware.id) && /blocked \((CHUNK_MISMATCH|MANIFEST_ROOT_MISMATCH)\)/.test(l));
  const tamperedRefused = () => tamperRefusal() !== undefined;
  seen = await waitFor(
    () => fleetState(devices),
    (s) => s.filter((d) => d.running.get(fw) === "2.0.0").length >= firstWave.length - 1 && tamperedRefused(),
    CONVERGE_MS,
  );
  const inFirst = seen.value.filter((s) => firstWave.includes(s.device) && s.running.get(fw) === "2.0.0").length;
  const inSecondEarly = seen.value.filter((s) => secondWave.includes(s.device) && s.running.get(fw) !== "1.0.0").length;
  log.check(
    "wave 0 takes sensor-fw 2.0.0 (APP-II-3)",
    `${firstWave.length - 1} of ${firstWave.length} (all but the tampered device)`,
    `${inFirst} of ${firstWave.length} in ${(seen.ms / 1000).toFixed(1)} s`,
    inFirst === firstWave.length - 1,
  );
  const tamperedState = seen.value.find((s) => s.device === c.tampered)!;
  const refusal = tamperRefusal() ?? [...c.tampered.log].reverse().find((l) => l.includes(firmware.id)) ?? "(nothing logged)";
  log.check(
    `${c.tampered.name} refuses its tampered download; nothing installed (CAP-11.1-a-v)`,
    "a chunk refused against the ledger's Merkle root, still running firmware 1.0.0",
    `${refusal.replace(/^release 0x[0-9a-f]+: /, "")}; ${c.services.mirror.altered} artifact read(s) altered; runs firmware ${tamperedState.running.get(fw) ?? "none"}`,
    tamperedRefused() && tamperedState.running.get(fw) === "1.0.0",
  );
  const blockedSeen = await waitFor(
    async () => ({
      blocked: await trackerGet<{ devices: { id: string; lastCode: string | null; blockedSince: number | null }[] }>(
        services,
        "/v1/fleet/devices?status=blocked",
      ),
      rollouts: await trackerGet<{ rollouts: { releaseId: string; failed: number; blocked: number }[] }>(services, "/v1/rollouts"),
    }),
    (v) => v.blocked.devices.some((d) => d.id === c.tampered.id),
    30_000,
  );
  const tamperedView = blockedSeen.value.blocked.devices.find((d) => d.id === c.tampered.id);
  const fwRollout = blockedSeen.value.rollouts.rollouts.find((r) => r.releaseId.toLowerCase() === firmware.id);
  log.check(
    `the tracker shows ${c.tampered.name} blocked, with its cause, and counts no failure against the rollout (REQ-10f-ii)`,
    "blocked by CHUNK_MISMATCH, 0 failures",
    `${tamperedView ? `blocked by ${tamperedView.lastCode}` : "not listed blocked"}, ${fwRollout?.failed ?? "?"} failure(s)`,
    blockedSeen.met && tamperedView !== undefined && (fwRollout?.failed ?? 0) === 0,
  );
  c.services.mirror.tampering = false;
  const beforeOpen = starts[1] - (await chainTime(c));
  seen = { value: await fleetState(devices), met: true, ms: 0 };
  const early = seen.value.filter((s) => secondWave.includes(s.device) && s.running.get(fw) !== "1.0.0").length;
  log.check(
    "wave 1 waits for its start time",
    `0 of ${secondWave.length} before it opens`,
    `${Math.max(early, inSecondEarly)} of ${secondWave.length}, ${Math.max(0, beforeOpen)} s before it opens`,
    early === 0 && inSecondEarly === 0,
  );
  if (beforeOpen > 0) {
    log.note(`waiting ${beforeOpen} s for wave 1 (watch the dashboard: ${services.hq.http.url})`);
    await sleep(beforeOpen * 1000);
  }
  seen = await waitFor(
    () => fleetState(devices),
    (s) => s.filter((d) => secondWave.includes(d.device) && d.running.get(fw) === "2.0.0").length === secondWave.length,
    CONVERGE_MS,
  );
  const inSecond = seen.value.filter((s) => secondWave.includes(s.device) && s.running.get(fw) === "2.0.0").length;
  log.check(
    "wave 1 takes sensor-fw 2.0.0 once it opens",
    `${secondWave.length} of ${secondWave.length}`,
    `${inSecond} of ${secondWave.length} in ${(seen.ms / 1000).toFixed(1)} s after opening`,
    inSecond === secondWave.length,
  );
  // The mirror is honest again: the blocked device's next try (after its backoff) takes the release.
  const recovered = await waitFor(
    () => fleetState([c.tampered]),
    (s) => s[0].running.get(fw) === "2.0.0",
    CONVERGE_MS,
  );
  log.check(
    `${c.tampered.name} installs sensor-fw 2.0.0 once the mirror stops tampering (a delivery fault is retried)`,
    "runs 2.0.0",
    `runs ${recovered.value[0].running.get(fw) ?? "none"}${recovered.met ? ` after ${(recovered.ms / 1000).toFixed(1)} s more` : ""}`,
    recovered.met,
  );
  const summary = await waitFor(
    () => trackerGet<{ total: number; byNetwork: { network: string; total: number }[] }>(services, "/v1/fleet/summary"),
    (s) => s.total === devices.length && s.byNetwork.length === 2,
    30_000,
  );
  log.check(
    "the tracker follows both networks (APP-II-4, CAP-11.2-a)",
    `${devices.length} devices on plant-1 and plant-2`,
    `${summary.value.total} devices: ${summary.value.byNetwork.map((n) => `${n.network} ${n.total}`).join(", ")}`,
    summary.met,
  );

  // ------------------------------------------------------------------ act 5
  log.begin("bad release", "sensor-fw 2.1.0 fails its self-test on rev-c boards; the canaries roll back and the rollout halts");
  const revC = devices.filter((d) => d.hardwareClass === 3 && d !== c.tampered);
  const canaries = revC.slice(0, 4);
  const rest = revC.slice(4);
  const bad = await publishSample(
    ledger,
    { component: FIRMWARE, version: "2.1.0", size: 160 * 1024, hardware: [3], depends: [[BOOTLOADER, "^1.0.0"]], selfTestPasses: false },
    where,
  );
  log.note(`${bad.label} for rev-c only: published (gas ${bad.gasUsed}); its image fails the board's self-test`);
  // The threshold is the canaries' number: a lower one may halt the rollout (rightly) before the
  // slowest canary, still in its start jitter, has tried, and the story would depend on timing.
  const badStarts = await stageRollout(c, log, bad, [canaries, rest], canaries.length);
  const rolledBack = (states: Awaited<ReturnType<typeof fleetState>>) =>
    states.filter((s) => canaries.includes(s.device) && s.lastResult?.releaseId.toLowerCase() === bad.id && s.lastResult.outcome === "rolled-back");
  seen = await waitFor(
    () => fleetState(devices),
    (s) => rolledBack(s).length === canaries.length,
    CONVERGE_MS,
  );
  const back = rolledBack(seen.value);
  log.check(
    "the canaries try 2.1.0, fail the health check and roll back (CAP-11.1-a-v)",
    `${canaries.length} rolled back, still running 2.0.0`,
    `${back.length} of ${canaries.length} rolled back; running ${[...new Set(seen.value.filter((s) => canaries.includes(s.device)).map((s) => s.running.get(fw)))].join(", ")}`,
    back.length === canaries.length && back.every((s) => s.running.get(fw) === "2.0.0"),
  );
  const halted = await waitFor(
    () => c.ledger.rollout.rolloutStatus(bad.id),
    (st) => ledgerName(ROLLOUT_STATE, st.state) === "halted",
    30_000,
  );
  log.check(
    "the tracker posts the failures and the rollout halts itself on the ledger (APP-II-3)",
    `halted at ${canaries.length} failures`,
    `${ledgerName(ROLLOUT_STATE, halted.value.state)}: ${halted.value.failures} failures posted, threshold ${halted.value.failureThreshold}`,
    halted.met,
  );
  const wait = badStarts[1] - (await chainTime(c)) + 6;
  if (wait > 0) {
    log.note(`waiting ${wait} s, past the second wave's start time`);
    await sleep(wait * 1000);
  }
  const after = await fleetState(devices);
  const tookBad = after.filter((s) => rest.includes(s.device) && s.running.get(fw) === "2.1.0").length;
  const triedBad = after.filter((s) => rest.includes(s.device) && s.lastResult?.releaseId.toLowerCase() === bad.id).length;
  log.check(
    "the halted rollout stops the second wave",
    `0 of ${rest.length} try 2.1.0`,
    `${tookBad + triedBad} of ${rest.length} tried it`,
    tookBad + triedBad === 0,
  );

  // ------------------------------------------------------------------ act 6
  log.begin("audit", "an auditor revokes 2.1.0 and flags bootloader 1.0.0 vulnerable; the tracker lists who is affected");
  const auditor = ledger.registry.connect(ledger.actors.auditor);
  await (await auditor.revokeRelease(bad.id, "fails its self-test on rev-c boards")).wait();
  await (await auditor.flagVulnerable(bootloader.id, "CVE-2026-0001: boot-time signature check bypass")).wait();
  log.note(`revoked ${bad.label}; flagged ${bootloader.label} vulnerable (CAP-11.3-b/c)`);
  const vulnerable = await waitFor(
    () => trackerGet<{ total: number }>(services, "/v1/fleet/devices?status=vulnerable&limit=1"),
    (v) => v.total === devices.length,
    30_000,
  );
  log.check(
    "the tracker lists every device running the flagged bootloader (CAP-11.2-b)",
    `${devices.length} vulnerable`,
    `${vulnerable.value.total} listed vulnerable`,
    vulnerable.met,
  );
  // Only the canaries failed 2.1.0; a device that refused the revoked release is refused, with the reason (issue 15).
  type Listed = { total: number; devices: { id: string; lastCode: string | null }[] };
  const failedList = await trackerGet<Listed>(services, "/v1/fleet/devices?status=failed&limit=1000");
  const refusedList = await trackerGet<Listed>(services, "/v1/fleet/devices?status=refused&limit=1000");
  const canaryIds = new Set(canaries.map((d) => d.id));
  const reasons = new Map<string, number>();
  for (const d of refusedList.devices) reasons.set(d.lastCode ?? "no reason", (reasons.get(d.lastCode ?? "no reason") ?? 0) + 1);
  const byReason = [...reasons].map(([code, n]) => `${n} ${code}`).join(", ");
  log.check(
    "the tracker lists as failed only the devices where 2.1.0 really failed; refusals are listed as refused, with the reason",
    `${canaries.length} failed (the canaries); refused devices each with a reason`,
    `${failedList.total} failed${failedList.devices.every((d) => canaryIds.has(d.id)) ? " (the canaries)" : ""}; ${refusedList.total} refused (${byReason || "none"})`,
    failedList.total === canaries.length && failedList.devices.every((d) => canaryIds.has(d.id)) && refusedList.devices.every((d) => d.lastCode),
  );
  const releases = await trackerGet<{ releases: { id: string; status: string }[] }>(services, "/v1/releases");
  const badView = releases.releases.find((r) => r.id.toLowerCase() === bad.id);
  const onBad = countRunning(await fleetState(devices), FIRMWARE, "2.1.0");
  log.check(
    "no device runs the revoked release",
    "revoked, 0 devices",
    `${badView?.status ?? "not listed"}, ${onBad} devices`,
    badView?.status === "revoked" && onBad === 0,
  );

  // ------------------------------------------------------------------ act 7
  log.begin("anchor", "the tracker anchors the fleet's state on the ledger; a device proves its own record");
  const result = await services.hq.tracker.anchorStatus();
  if (!result.anchored) {
    log.check("the fleet's state is anchored", "an anchor", `nothing anchored (${result.reason})`, false);
    return;
  }
  const anchored = result.anchor;
  log.note(`anchor ${anchored.index}: root ${anchored.root.slice(0, 18)}… over ${anchored.deviceCount} devices (tx ${anchored.txHash.slice(0, 18)}…)`);
  const probe = devices[devices.length - 1];
  const proof = await trackerGet<AnchorProof>(services, `/v1/anchors/${anchored.index}/devices/${probe.id}`);
  const [verified, anchoredBy] = await c.chain.anchors.verifyStatus(anchored.index, proof.record, proof.proof);
  const operator = await c.ledger.actors.trackerOperator.getAddress();
  log.check(
    `${probe.name}'s status record verifies against the anchor on the ledger, anchored by the fleet's tracker`,
    `verifyStatus true, anchored by ${operator}`,
    `verifyStatus ${verified}, anchored by ${anchoredBy}, ${anchored.deviceCount} devices anchored`,
    verified && anchoredBy === operator && anchored.deviceCount === devices.length,
  );
}

/** Asks the registry (a static call) whether it would take this release; returns the error it names. */
async function refusedByRegistry(c: StoryCast, component: string, version: string, deps: [string, string][]): Promise<string> {
  const { ledger } = c;
  const record = normalizeRelease({
    provider: 1,
    component: componentId(component),
    version: encodeVersion(version),
    fileHash: "0x" + "11".repeat(32),
    fileLink: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    fileName: path.basename(`${component}-${version}.bin`),
    fileSize: 1024n,
    merkleRoot: "0x" + "22".repeat(32),
    hardware: [1],
    dependencies: deps.map(([d, range]) => dependsOn(componentId(d), range)),
  });
  const signature = await signRelease(ledger.actors.releaseKey, ledger.domain, record);
  const witnesses = await findWitnesses(ledger.registry, record.dependencies);
  try {
    await ledger.registry.connect(ledger.actors.author).publishRelease.staticCall(record, ledger.actors.releaseKey.address, signature, witnesses);
    return "accepted";
  } catch (err) {
    return decodeRevert(err, [ledger.registry.interface])?.name ?? (err as Error).message;
  }
}
