import type { Command } from "commander";
import path from "node:path";
import { NonceManager, Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import type { CliContext } from "../../context";
import { InputError } from "../../../core/errors";
import { componentId } from "../../../core/release";
import { DEVICE_STANDING, ledgerName } from "../../../core/ledgerCodes";
import { DeviceRunner } from "../../../consumer/deviceRunner";
import type { DeviceAgentOptions } from "../../../consumer/deviceAgent";
import { listHardwareClasses, resolveHardwareClass } from "../../../chain/hardwareClasses";
import { confirm } from "../../transactions";
import { finishDeviceRun } from "../../finishDeviceRun";
import { parseLabel } from "../../parse";
import { trackerGet } from "../../trackerClient";
import { moduleEncryptionKey } from "../../../chain/trackerModules";
import type { FleetRegistry } from "../../../chain/contracts";

/**
 * A simulated fleet, added to the `fleet` command by commands/fleet.ts: `fleet simulate` runs N
 * device agents on this machine (demos, tests, benchmarks).
 */
export function registerSimulate(fleet: Command, ctx: CliContext): void {
  fleet
    .command("simulate")
    .description("run N device agents on this machine, each with its own key, hardware class, slots and state")
    .requiredOption("--devices <n>", "how many devices")
    .requiredOption("--hardware <a,b>", "hardware classes (names or ids), given to devices in turn")
    .requiredOption("--components <a,b>", "component names every device runs")
    .option("--data-dir <dir>", "where the devices keep their slots", "./.ota-ledger/fleet")
    .option("--enrol", "enrol the devices on the ledger first (needs an administrator key)")
    .option("--seed <text>", "derives the devices' keys, so a run can be repeated", "ota-ledger fleet")
    .option("--once", "consider what the ledger holds now, print the fleet, then exit")
    .option("--report-to <url>", "a tracker module the devices report to and take notices from (client-module mode); its key is read from the ledger")
    .option("--network <label>", "the devices' network label", "simulated")
    .option("--heartbeat-ms <ms>", "with --report-to: how often each device reports", "60000")
    .action(
      async (o: {
        devices: string;
        hardware: string;
        components: string;
        dataDir: string;
        enrol?: boolean;
        seed: string;
        once?: boolean;
        reportTo?: string;
        network: string;
        heartbeatMs: string;
      }) => {
        const n = Number(o.devices);
        if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InputError("DEVICES", "--devices must be a whole number from 1 to 10000");
        const config = await ctx.config();
        const chain = await ctx.connectReadOnly();
        const { registry, fleet } = chain;
        const known = await listHardwareClasses(registry);
        const hardware = o.hardware
          .split(",")
          .map((x) => x.trim())
          .filter(Boolean)
          .map((h) => resolveHardwareClass(h, known, "--hardware"));
        if (hardware.length === 0) throw new InputError("HARDWARE", "--hardware names at least one hardware class");
        const components = o.components.split(",").map((c) => componentId(c.trim()));
        const heartbeatMs = Number(o.heartbeatMs);
        if (!Number.isInteger(heartbeatMs) || heartbeatMs < 1000)
          throw new InputError("INVALID_INPUT", "--heartbeat-ms must be a whole number of milliseconds, at least 1000");
        const network = parseLabel(o.network, "--network");
        const tracker = o.reportTo ? await trackerOnLedger(o.reportTo, fleet, chain.fromBlock, config.tracker?.apiToken) : undefined;
        const devices: Omit<DeviceAgentOptions, "chain">[] = [];
        const records = [];
        for (let i = 0; i < n; i++) {
          const key = new Wallet(keccak256(toUtf8Bytes(`${o.seed}:${i}`)));
          const record = {
            id: keccak256(toUtf8Bytes(`${o.seed}:device:${i}`)),
            publicKey: key.signingKey.compressedPublicKey,
            hardwareClass: hardware[i % hardware.length],
            network,
            region: encodeBytes32String("sim"),
          };
          records.push(record);
          devices.push({
            dataDir: path.resolve(ctx.io.cwd, o.dataDir, `device-${i}`),
            device: { privateKey: key.privateKey, credential: { record, batchId: 0, proof: [] } },
            serverUrl: config.serverUrl,
            components,
            policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
            healthCheck: async () => true,
            tracker,
          });
        }
        if (o.enrol) {
          const { fleet: writable, signer } = await ctx.connect();
          // Several transactions in a row: count nonces here (ethers caches an identical nonce answer briefly).
          const sender = writable.connect(new NonceManager(signer));
          for (const r of records) if (ledgerName(DEVICE_STANDING, await fleet.deviceStanding(r, 0, [])) === "unknown") await confirm(sender.enrolDevice(r));
        }
        const runner = await DeviceRunner.start(chain, devices, { stateDir: path.resolve(ctx.io.cwd, o.dataDir), heartbeatMs, log: () => {} });
        await finishDeviceRun(ctx, runner, o.once);
      },
    );
}

/**
 * The tracker module at `url`, with the public key its devices seal reports to taken from the
 * ledger's registration, not from the tracker's own answer: a device trusts only the ledger.
 */
async function trackerOnLedger(
  url: string,
  fleet: FleetRegistry,
  fromBlock: number,
  token?: string,
): Promise<{ moduleId: string; publicKey: string; url: string }> {
  const health = await trackerGet<{ module: { id: string } }>(url, "/v1/health", token);
  const publicKey = await moduleEncryptionKey(fleet, health.module.id, fromBlock);
  if (!publicKey)
    throw new InputError("TRACKER_NOT_REGISTERED", `the tracker at ${url} calls itself module ${health.module.id}, which is not registered on the ledger`);
  return { moduleId: health.module.id, publicKey, url };
}
