import { promises as fs } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { InputError } from "../core/errors";
import { writeFileAtomic } from "../files/atomicFile";
import type { DeviceRecord } from "../crypto/deviceTree";
import { resolveHardwareClass, type HardwareClass } from "../chain/hardwareClasses";
import { parseIdOrLabel, parseLabel, parsePublicKey } from "./parse";

/**
 * The files of batch enrolment: the input (a JSON array of device records, written by people)
 * and the proofs file written beside it (each device's Merkle proof and the batch id, which a
 * device needs to show it is enrolled).
 */

/** One device as a person writes it: labels and names allowed where the ledger wants bytes32 and ids. */
const inputRecordSchema = z.strictObject({
  id: z.string({ error: "id must be 0x + 64 hex digits or a label" }),
  publicKey: z.string({ error: "publicKey must be a 33-byte compressed key in hex" }),
  hardware: z.union([z.string(), z.number()], { error: "hardware must be a registered hardware class name or id" }),
  network: z.string({ error: "network must be a label such as lab" }),
  region: z.string({ error: "region must be a label such as eu-west" }),
});
export type InputRecord = z.infer<typeof inputRecordSchema>;

/** The records of a batch file, unchecked against the chain (hardware is resolved later). */
export async function readBatchFile(file: string): Promise<InputRecord[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new InputError("BATCH_FILE_INVALID", `--batch ${file} cannot be read as JSON (${why}): give a JSON array of device records`, { cause });
  }
  const parsed = z.array(inputRecordSchema).min(1).safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => (i.path.length > 0 ? `record ${i.path.join(".")}: ` : "") + i.message);
    throw new InputError("BATCH_FILE_INVALID", `--batch ${file}: ${problems.join("; ")}; each record is {"id","publicKey","hardware","network","region"}`, {
      details: { problems },
    });
  }
  return parsed.data;
}

/**
 * A record as the ledger takes it: each field checked, its hardware class resolved against the
 * registered ones (`hardware` null: every other field checked, hardware left at 0, to refuse bad
 * input before connecting). `name` says how to call a field in messages.
 */
export function toDeviceRecord(input: InputRecord, hardware: HardwareClass[] | null, name: (field: keyof InputRecord) => string): DeviceRecord {
  return {
    id: parseIdOrLabel(input.id, name("id")),
    publicKey: parsePublicKey(input.publicKey, name("publicKey")),
    hardwareClass: hardware ? resolveHardwareClass(input.hardware, hardware, name("hardware")) : 0,
    network: parseLabel(input.network, name("network")),
    region: parseLabel(input.region, name("region")),
  };
}

/** What the proofs file holds: enough for a device (or `device status --proofs`) to prove enrolment. */
export interface ProofsFile {
  chainId: string;
  fleet: string;
  batchId: number;
  root: string;
  recordsLink: string;
  devices: (DeviceRecord & { proof: string[] })[];
}

/** devices.json -> devices.proofs.json (any other name gets .proofs.json appended). */
export function proofsPathFor(batchFile: string): string {
  const ext = path.extname(batchFile);
  return ext === ".json" ? batchFile.slice(0, -ext.length) + ".proofs.json" : batchFile + ".proofs.json";
}

export async function writeProofsFile(file: string, proofs: ProofsFile): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(proofs, null, 2) + "\n");
}

export async function readProofsFile(file: string): Promise<ProofsFile> {
  try {
    const proofs = JSON.parse(await fs.readFile(file, "utf8")) as ProofsFile;
    if (!Number.isInteger(proofs.batchId) || !Array.isArray(proofs.devices)) throw new Error("no batchId or devices");
    return proofs;
  } catch (cause) {
    throw new InputError("PROOFS_FILE_INVALID", `--proofs ${file} is not a proofs file written by \`ota-ledger device enrol --batch\``, { cause });
  }
}
