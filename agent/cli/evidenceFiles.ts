import { promises as fs } from "node:fs";
import path from "node:path";
import { InputError } from "../core/errors";
import { isEvidence, MAX_EVIDENCE_BYTES } from "../core/installedContext";
import { writeFileAtomic } from "../files/atomicFile";

/**
 * Evidence files, as `policy allowlist` writes them and `policy evidence` reads them: a JSON object
 * whose `devices` maps each device id to the evidence it brings to a policy (0x hex), with other
 * fields (`root`, the tree the proofs are in) kept for the administrator's reference.
 */
export interface EvidenceFile {
  root?: string;
  devices: Record<string, string>;
}

const DEVICE_ID = /^0x[0-9a-fA-F]{64}$/;

export async function readEvidenceFile(cwd: string, file: string): Promise<EvidenceFile> {
  const at = path.resolve(cwd, file);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(at, "utf8"));
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (cause as Error).message;
    throw new InputError(
      "EVIDENCE_FILE_INVALID",
      `evidence file ${file} cannot be read (${why}): give the file policy allowlist wrote, or {"devices": {"0x<deviceId>": "0x<evidence>"}}`,
      {
        cause,
      },
    );
  }
  const devices = (raw as { devices?: unknown } | null)?.devices;
  if (!raw || typeof raw !== "object" || !devices || typeof devices !== "object" || Array.isArray(devices))
    throw new InputError("EVIDENCE_FILE_INVALID", `evidence file ${file} must be a JSON object {"devices": {"0x<deviceId>": "0x<evidence>", ...}}`);
  const out: Record<string, string> = {};
  for (const [id, evidence] of Object.entries(devices as Record<string, unknown>)) {
    if (!DEVICE_ID.test(id)) throw new InputError("EVIDENCE_FILE_INVALID", `evidence file ${file}: ${id} is not a device id (0x followed by 64 hex digits)`);
    if (!isEvidence(evidence) || evidence === "0x")
      throw new InputError("EVIDENCE_FILE_INVALID", `evidence file ${file}: the evidence of ${id} must be 0x-prefixed hex of 1 to ${MAX_EVIDENCE_BYTES} bytes`);
    if (id.toLowerCase() in out) throw new InputError("EVIDENCE_FILE_INVALID", `evidence file ${file} names device ${id} twice`);
    out[id.toLowerCase()] = evidence as string;
  }
  if (Object.keys(out).length === 0) throw new InputError("EVIDENCE_FILE_INVALID", `evidence file ${file} holds evidence for no device`);
  const root = (raw as { root?: unknown }).root;
  return { ...(typeof root === "string" ? { root } : {}), devices: out };
}

export async function writeEvidenceFile(cwd: string, file: string, content: EvidenceFile): Promise<string> {
  const at = path.resolve(cwd, file);
  await writeFileAtomic(at, JSON.stringify(content, null, 2) + "\n");
  return at;
}

/** The size of one `policy evidence` request's devices, in bytes of JSON: half a tracker's body limit. */
export const EVIDENCE_BATCH_BYTES = 8 * 1024 * 1024;

/** The file's devices in batches of at most `maxBytes` of JSON, in the file's order. */
export function* evidenceBatches(devices: Record<string, string>, maxBytes = EVIDENCE_BATCH_BYTES): Generator<Record<string, string>> {
  let batch: Record<string, string> = {};
  let size = 0;
  for (const [id, evidence] of Object.entries(devices)) {
    const entry = id.length + evidence.length + 6; // "id":"evidence",
    if (size > 0 && size + entry > maxBytes) {
      yield batch;
      batch = {};
      size = 0;
    }
    batch[id] = evidence;
    size += entry;
  }
  if (size > 0) yield batch;
}
