import { readFile } from "node:fs/promises";
import type { LedgerProofsSetting } from "../../agent/chain/ledgerProofs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes, type JsonRpcProvider, type Signer, type TypedDataDomain } from "ethers";
import { DeviceRunner } from "../../agent/consumer/deviceRunner";
import type { DeviceAgentOptions } from "../../agent/consumer/deviceAgent";
import type { DeviceCredential } from "../../agent/crypto/deviceCredential";
import type { UpdatePhase } from "../../agent/core/updateCheck";
import { loadBootState } from "../../agent/consumer/slots/bootState";
import { IMAGE_FILE } from "../../agent/consumer/slots/slotImageFile";
import type { HealthCheck } from "../../agent/consumer/slots/healthCheck";
import { componentId } from "../../agent/core/release";
import { formatVersion } from "../../agent/core/version";
import type { FleetRegistry, UpdatePolicies, UpdateRegistry } from "../../typechain-types";
import { BOOTLOADER, FIRMWARE, HARDWARE, type TrackerModuleKey } from "./ledgerSetup";
import { SELF_TEST_PASS } from "./sampleRelease";

/** One simulated device: its identity, where it lives, and what it logged. */
export interface DemoDevice {
  index: number;
  name: string; // e.g. "p1-rev-b-07"
  id: string;
  hardwareClass: number; // 1..3
  network: "plant-1" | "plant-2";
  dataDir: string;
  log: string[];
}

/** What a device runs, read from its boot state on disk (what it would boot). */
export interface DeviceState {
  device: DemoDevice;
  running: Map<string, string>; // component id -> formatted version
  lastResult: { releaseId: string; outcome: string; code: string } | null;
}

export interface FleetPlan {
  /** Devices per network: the first reports to the server module, the second to the gateway (APP-II-4). */
  perNetwork: { "plant-1": number; "plant-2": number };
}

/**
 * The board's self-test, as a real health check would run it: it reads the image the trial boot
 * runs and passes only if the image's own self-test marker says so.
 */
export const selfTest: HealthCheck = async (slotDir) => {
  const head = await readFile(path.join(slotDir, IMAGE_FILE)).then((b) => b.subarray(0, SELF_TEST_PASS.length).toString("latin1"));
  return head === SELF_TEST_PASS;
};

/** The devices of the story: named by network, hardware class and number, keys derived from their names. */
export function planFleet(plan: FleetPlan, dataRoot: string): DemoDevice[] {
  const devices: DemoDevice[] = [];
  for (const network of ["plant-1", "plant-2"] as const) {
    for (let k = 0; k < plan.perNetwork[network]; k++) {
      const hardwareClass = (devices.length % HARDWARE.length) + 1;
      const name = `${network === "plant-1" ? "p1" : "p2"}-${HARDWARE[hardwareClass - 1].replace("acme-board-", "")}-${String(k + 1).padStart(2, "0")}`;
      devices.push({
        index: devices.length,
        name,
        id: keccak256(toUtf8Bytes(`OTA Ledger demo device ${name}`)),
        hardwareClass,
        network,
        dataDir: path.join(dataRoot, name),
        log: [],
      });
    }
  }
  return devices;
}

function deviceKey(d: DemoDevice): Wallet {
  return new Wallet(keccak256(toUtf8Bytes(`OTA Ledger demo device key ${d.name}`)));
}

/** The device's record as the administrator enrols it (singly, or as a leaf of a batch). */
export function deviceRecord(d: DemoDevice) {
  return {
    id: d.id,
    publicKey: deviceKey(d).signingKey.compressedPublicKey,
    hardwareClass: d.hardwareClass,
    network: encodeBytes32String(d.network),
    region: encodeBytes32String(d.network === "plant-1" ? "eu-west" : "eu-north"),
  };
}

/** The administrator enrols every device on the ledger (FleetRegistry). */
export async function enrolFleet(fleet: FleetRegistry, admin: Signer, devices: DemoDevice[]): Promise<void> {
  const writable = fleet.connect(admin);
  const sent = [];
  for (const d of devices) sent.push(await writable.enrolDevice(deviceRecord(d)));
  await Promise.all(sent.map((tx) => tx.wait()));
}

/**
 * Starts every device agent (one runner, one ledger watcher), each reporting to its network's
 * tracker module and taking the notices in the answers; `serverUrlOf` says where each device
 * fetches images (the demo sends one device to a compromised mirror).
 *
 * Options for other users of the fleet (bench/e2e.ts); the demo leaves them at their defaults:
 * `credentialOf` gives a batch-enrolled device its record and proof (default: enrolled singly),
 * `heartbeatMs` how often devices report (default 2 s), `retryMs` how often they retry what
 * could not be done yet (default 2 s), `onPhase` hears each device's update
 * phases (e.g. "confirmed") as they are reached.
 */
export async function startFleet(o: {
  chain: { provider: JsonRpcProvider; registry: UpdateRegistry; fleet: FleetRegistry; policies: UpdatePolicies; domain: TypedDataDomain; fromBlock: number };
  devices: DemoDevice[];
  stateDir: string;
  serverUrlOf: (d: DemoDevice) => string;
  /** Each network's tracker module; with `mqtt`, its devices report over that broker (ADR 0015) instead of HTTP. */
  trackers: { "plant-1": { key: TrackerModuleKey; url: string; mqtt?: string }; "plant-2": { key: TrackerModuleKey; url: string; mqtt?: string } };
  pinnedSigners: string[];
  credentialOf?: (d: DemoDevice) => DeviceCredential;
  heartbeatMs?: number;
  retryMs?: number;
  onPhase?: (d: DemoDevice, phase: UpdatePhase, releaseId: string) => void;
  /** The devices' ledger proofs setting (device.json ledgerProofs; default "auto"). */
  ledgerProofs?: LedgerProofsSetting;
  /** The devices' start jitter before an update (device.json startJitterMs; default 2 s). */
  startJitterMs?: number;
  /** Updates at once in this process (DeviceRunner's maxConcurrentUpdates; default its own). */
  maxConcurrentUpdates?: number;
}): Promise<DeviceRunner> {
  const options: Omit<DeviceAgentOptions, "chain">[] = o.devices.map((d) => {
    const t = o.trackers[d.network];
    return {
      dataDir: d.dataDir,
      device: { privateKey: deviceKey(d).privateKey, credential: o.credentialOf?.(d) ?? { record: deviceRecord(d), batchId: 0, proof: [] } },
      serverUrl: o.serverUrlOf(d),
      components: [componentId(BOOTLOADER), componentId(FIRMWARE)],
      // The demo chain makes a block a second, so a device's view of the ledger is never older than that.
      policy: { maxLedgerAgeSeconds: 600 },
      healthCheck: selfTest,
      tracker: {
        moduleId: t.key.id,
        publicKey: t.key.publicKey,
        url: t.url,
        ...(t.mqtt ? { transport: { kind: "mqtt" as const, url: t.mqtt } } : {}),
      },
      pinnedSigners: o.pinnedSigners,
      download: { timeoutMs: 10_000, attempts: 2, backoffMs: 200, ...(o.startJitterMs === undefined ? {} : { startJitterMs: o.startJitterMs }) },
      ...(o.ledgerProofs ? { ledgerProofs: o.ledgerProofs } : {}),
      log: (line: string) => void d.log.push(line),
      ...(o.onPhase ? { onPhase: (phase: UpdatePhase, releaseId: string) => o.onPhase!(d, phase, releaseId) } : {}),
    };
  });
  return DeviceRunner.start(o.chain, options, {
    stateDir: o.stateDir,
    pollMs: 1000,
    retryMs: o.retryMs ?? 2000,
    heartbeatMs: o.heartbeatMs ?? 2000,
    ...(o.maxConcurrentUpdates === undefined ? {} : { maxConcurrentUpdates: o.maxConcurrentUpdates }),
    log: () => {},
  });
}

/** What every device runs now, from its boot state on disk. */
export async function fleetState(devices: DemoDevice[]): Promise<DeviceState[]> {
  return Promise.all(
    devices.map(async (device) => {
      const loaded = await loadBootState(path.join(device.dataDir, "slots"));
      const running = new Map<string, string>();
      if (!("state" in loaded)) return { device, running, lastResult: null };
      for (const [component, c] of Object.entries(loaded.state.components)) {
        const image = c.slots[c.active];
        if (image && !c.trial) running.set(component, formatVersion(BigInt(image.version)));
      }
      const last = loaded.state.lastResult;
      return { device, running, lastResult: last && { releaseId: last.releaseId, outcome: last.outcome, code: last.code } };
    }),
  );
}

/** How many devices run `version` of `component`. */
export function countRunning(states: DeviceState[], component: string, version: string): number {
  const id = componentId(component).toLowerCase();
  return states.filter((s) => s.running.get(id) === version).length;
}
