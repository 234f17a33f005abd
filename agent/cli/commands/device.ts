import { promises as fs } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { decodeBytes32String, hexlify } from "ethers";
import type { CliContext } from "../context";
import { InputError, OtaError } from "../../core/errors";
import { DEVICE_STANDING, ledgerName } from "../../core/ledgerCodes";
import { buildDeviceBatch, checkDeviceRecord, type DeviceRecord } from "../../crypto/deviceTree";
import { listHardwareClasses } from "../../chain/hardwareClasses";
import { proofsPathFor, readBatchFile, readProofsFile, toDeviceRecord, writeProofsFile } from "../deviceFiles";
import { parseIdOrLabel, parseReason } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";
import { queryLogs } from "../../chain/queryLogs";
import { registerOnDeviceCommands } from "./device/onDevice";
import { registerTagCommands } from "./device/tags";
import type { EventLog } from "ethers";

interface EnrolOptions {
  id?: string;
  publicKey?: string;
  hardware?: string;
  network?: string;
  region?: string;
  batch?: string;
  recordsLink: string;
  writeConfig?: string;
  component: string[];
}

/**
 * `device`: the administrator's commands on device identities (CAP-11.3-d: enrolment singly or in
 * Merkle batches, suspension, standing), the device's own commands (device/onDevice.ts: run,
 * install, keygen; also the whole of the device's CLI, deviceMain.ts) and the tracker's tags on a
 * device (device/tags.ts).
 */
export function register(program: Command, ctx: CliContext): void {
  const device = program.command("device").description("device identities on the ledger");

  device
    .command("enrol")
    .description("enrol one device (--id ... --region) or a batch from a JSON file (--batch)")
    .option("--id <id>", "device id: 0x + 64 hex digits, or a label hashed with keccak256")
    .option("--public-key <hex>", "33-byte compressed secp256k1 key")
    .option("--hardware <class>", "hardware class id or registered name")
    .option("--network <label>", "network label (up to 31 bytes)")
    .option("--region <label>", "region or group label (up to 31 bytes)")
    .option("--batch <file>", "JSON array of {id, publicKey, hardware, network, region}; writes the proofs beside it (devices.json: devices.proofs.json)")
    .option("--records-link <link>", "with --batch: where the records are published (e.g. an IPFS CID)", "")
    .option(
      "--write-config <file>",
      "one device: also write a starter device.json for it (its credential; device.key beside it; data in ./data; healthCheck pass), never over an existing file",
    )
    .option("--component <name>", "with --write-config: a component the device runs (repeat)", (v: string, all: string[]) => [...all, v], [])
    .action(async (options: EnrolOptions) => (options.batch ? enrolBatch(ctx, options.batch, options) : enrolOne(ctx, options)));

  device
    .command("suspend <id>")
    .description("suspend a device: it is no longer served or offered updates")
    .requiredOption("--reason <text>", "why, recorded on the ledger")
    .action(async (idText: string, options: { reason: string }) => {
      const id = parseIdOrLabel(idText, "device id");
      const reason = parseReason(options.reason);
      const { fleet } = await ctx.connect();
      const { tx } = await confirm(fleet.suspendDevice(id, reason));
      ctx.output({ device: id, suspended: true, reason, tx }, `device ${id} is suspended: ${reason}\n${describeTx(tx)}`);
    });

  device
    .command("reinstate <id>")
    .description("reinstate a suspended device")
    .action(async (idText: string) => {
      const id = parseIdOrLabel(idText, "device id");
      const { fleet } = await ctx.connect();
      const { tx } = await confirm(fleet.reinstateDevice(id));
      ctx.output({ device: id, suspended: false, tx }, `device ${id} is reinstated\n${describeTx(tx)}`);
    });

  device
    .command("status <id>")
    .description("a device's standing (singly enrolled, or in a batch with --proofs) and suspension")
    .option("--proofs <file>", "the proofs file of the device's batch")
    .action(async (idText: string, options: { proofs?: string }) => showStatus(ctx, parseIdOrLabel(idText, "device id"), options.proofs));

  registerOnDeviceCommands(device, ctx);
  registerTagCommands(device, ctx);
}

async function enrolOne(ctx: CliContext, o: EnrolOptions): Promise<void> {
  const missing = (["id", "publicKey", "hardware", "network", "region"] as const).filter((k) => o[k] === undefined);
  if (missing.length > 0) {
    const flags = missing.map(flagName).join(", ");
    throw new InputError("INVALID_INPUT", `device enrol needs ${flags} (or --batch <file> for many devices)`);
  }
  const input = { id: o.id!, publicKey: o.publicKey!, hardware: o.hardware!, network: o.network!, region: o.region! };
  toDeviceRecord(input, null, flagName); // every field but hardware is checked before connecting
  const configFile = o.writeConfig === undefined ? undefined : path.resolve(ctx.io.cwd, o.writeConfig);
  if (configFile !== undefined) {
    if (o.component.length === 0) throw new InputError("INVALID_INPUT", "--write-config needs the components the device runs: --component <name> (repeat)");
    if (await exists(configFile))
      throw new InputError("CONFIG_FILE_EXISTS", `${configFile} exists: nothing was enrolled; give another --write-config file or remove it`);
  } else if (o.component.length > 0) throw new InputError("INVALID_INPUT", "--component goes with --write-config");
  const { registry, fleet } = await ctx.connect();
  const record = toDeviceRecord(input, await listHardwareClasses(registry), flagName);
  checkDeviceRecord(record);
  const { tx } = await confirm(fleet.enrolDevice(record));
  if (configFile !== undefined) {
    // The device is enrolled now: a file that cannot be written must not hide that.
    await writeStarterDeviceConfig(configFile, record, o.component).catch((cause: unknown) => {
      throw new OtaError(
        "CONFIG_NOT_WRITTEN",
        `device ${record.id} was enrolled (${describeTx(tx)}), but ${configFile} was not written (${(cause as Error).message}): write its device.json by hand with the record in details.device (docs/device.md)`,
        { details: { device: record, tx }, cause },
      );
    });
  }
  ctx.output(
    { device: record, tx, ...(configFile !== undefined ? { deviceConfig: configFile } : {}) },
    `enrolled device ${record.id}\n  hardware class ${record.hardwareClass}, network ${label(record.network)}, region ${label(record.region)}\n${describeTx(tx)}` +
      (configFile !== undefined ? `\n  device.json written to ${configFile} (the key goes beside it as device.key; see docs/device.md)` : ""),
  );
}

/** A device.json a device can run with (docs/device.md): its credential and the simplest choices, for the integrator to adjust. */
async function writeStarterDeviceConfig(file: string, record: DeviceRecord, components: string[]): Promise<void> {
  const config = {
    keyFile: "device.key",
    credential: { record, batchId: 0, proof: [] },
    components,
    dataDir: "./data",
    healthCheck: "pass",
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, JSON.stringify(config, null, 2) + "\n", { flag: "wx" });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

async function enrolBatch(ctx: CliContext, file: string, o: EnrolOptions): Promise<void> {
  if (o.writeConfig !== undefined || o.component.length > 0)
    throw new InputError("INVALID_INPUT", "--write-config and --component are for one device, not --batch");
  const single = (["id", "publicKey", "hardware", "network", "region"] as const).filter((k) => o[k] !== undefined);
  if (single.length > 0) throw new InputError("INVALID_INPUT", "use either --batch <file> or the single-device options (--id, --public-key, ...), not both");
  const batchFile = path.resolve(ctx.io.cwd, file);
  const inputs = await readBatchFile(batchFile);
  const { registry, fleet, chainId } = await ctx.connect();
  const hardware = await listHardwareClasses(registry);
  const records = inputs.map((r, i) => toDeviceRecord(r, hardware, (field) => `${file} record ${i} ${field}`));
  const batch = buildDeviceBatch(records);
  const { receipt, tx } = await confirm(fleet.enrolDeviceBatch(batch.root, records.length, o.recordsLink));
  const batchId = Number(findEvent(receipt, fleet, "DeviceBatchEnrolled").args.batchId);
  const proofsFile = proofsPathFor(batchFile);
  await writeProofsFile(proofsFile, {
    chainId: chainId.toString(),
    fleet: String(fleet.target),
    batchId,
    root: batch.root,
    recordsLink: o.recordsLink,
    devices: records.map((r, i) => ({ ...r, proof: batch.proofs[i] })),
  });
  ctx.output(
    { batch: { id: batchId, root: batch.root, count: records.length, recordsLink: o.recordsLink, proofsFile }, tx },
    `enrolled batch ${batchId} of ${records.length} devices, root ${batch.root}\n  proofs written to ${proofsFile}\n${describeTx(tx)}`,
  );
}

async function showStatus(ctx: CliContext, id: string, proofsPath?: string): Promise<void> {
  const config = await ctx.config();
  const proofs = proofsPath ? await readProofsFile(path.resolve(ctx.io.cwd, proofsPath)) : undefined;
  const inBatch = proofs?.devices.find((d) => d.id.toLowerCase() === id);
  if (proofs && !inBatch) throw new InputError("INVALID_INPUT", `device ${id} is not in ${proofsPath}: check the id or the proofs file`);
  const { fleet } = await ctx.connectReadOnly();
  if (proofs && proofs.fleet.toLowerCase() !== String(fleet.target).toLowerCase()) {
    throw new InputError("INVALID_INPUT", `${proofsPath} is for the fleet registry ${proofs.fleet}, not the configured ${fleet.target}: check the network`);
  }
  const suspended = await fleet.isDeviceSuspended(id);
  let record: DeviceRecord | undefined = inBatch;
  let enrolment: "single" | "batch" | "none" = inBatch ? "batch" : "none";
  if (!record) {
    // Only a record's hash is stored: find the record in its latest DeviceEnrolled event.
    const events = await queryLogs(fleet, fleet.filters.DeviceEnrolled(id), config.sources.deployedAtBlock ?? 0);
    const last = events.at(-1) as EventLog | undefined;
    if (last) {
      const { hardwareClass, network, region, publicKey } = last.args;
      record = { id, publicKey: hexlify(publicKey), hardwareClass: Number(hardwareClass), network, region };
      enrolment = "single";
    }
  }
  const standing = record ? ledgerName(DEVICE_STANDING, await fleet.deviceStanding(record, inBatch ? proofs!.batchId : 0, inBatch?.proof ?? [])) : "unknown";
  const shown = record && {
    publicKey: record.publicKey,
    hardwareClass: record.hardwareClass,
    network: record.network,
    region: record.region,
  };
  const result = {
    device: { id, standing, suspended, enrolment, batchId: inBatch ? proofs!.batchId : null, record: shown ?? null },
  };
  const how =
    enrolment === "none"
      ? "not enrolled singly (for a batch device give --proofs <file>)"
      : enrolment === "batch"
        ? `in batch ${proofs!.batchId}`
        : "enrolled singly";
  const lines = [`device ${id}`, `  standing   ${standing} (${how})`, `  suspended  ${suspended ? "yes" : "no"}`];
  if (record) lines.push(`  hardware   class ${record.hardwareClass}`, `  network    ${label(record.network)}`, `  region     ${label(record.region)}`);
  ctx.output(result, lines.join("\n"));
}

/** The command-line flag of a record field, for messages. */
function flagName(field: string): string {
  return field === "publicKey" ? "--public-key" : `--${field}`;
}

/** A bytes32 label as text when it is one, else its hex. */
function label(value: string): string {
  try {
    return decodeBytes32String(value);
  } catch {
    return value;
  }
}
