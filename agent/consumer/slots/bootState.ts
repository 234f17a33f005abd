import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
// A namespace import lets the device bundle leave out zod's locales and JSON Schema code (ADR 0007).
import * as z from "zod";
import { isValidVersion } from "../../core/version";
import { writeFileAtomic } from "../../files/atomicFile";
import { SlotInputError } from "./slotErrors";

/**
 * The device's boot state: which slot of each component runs, what each slot holds, the pending
 * trial, the anti-rollback floor and the report counter. One JSON file, always replaced
 * atomically, wrapped with the SHA-256 of its canonical body so that a garbled file is reported
 * as corrupt and never mistaken for a fresh device.
 */

export type SlotName = "a" | "b";

export interface SlotImage {
  releaseId: string; // bytes32
  version: string; // encoded uint64 version, decimal
  fileHash: string; // bytes32: SHA-256 of image.bin
  size: number; // bytes
}

export interface ComponentBoot {
  active: SlotName;
  slots: { a: SlotImage | null; b: SlotImage | null };
  /** `bundle`: the trial is one member of a bundle's (docs/adr/0019): its members boot, confirm and roll back together. */
  trial: null | { slot: SlotName; attemptsLeft: number; startedAt: number; bundle?: string };
  floor: string; // anti-rollback floor: encoded version, decimal; never decreases
}

export interface LastResult {
  releaseId: string;
  component: string;
  outcome: "confirmed" | "rolled-back" | "failed";
  code: string;
  at: number; // ms since the epoch
  reported: boolean;
}

export interface BootState {
  format: 1;
  components: Record<string, ComponentBoot>; // by component id (bytes32, lower case)
  failedReleases: Record<string, { at: number; code: string }>; // failed a trial: not retried blindly
  lastResult: LastResult | null;
  counter: number; // monotonic, for signed reports
  safeMode?: SafeModeMark; // set by resetToSafeMode: components are unknown
}

export interface SafeModeMark {
  since: number; // ms since the epoch
  reason: string; // why the previous state was refused
  keptAs: string | null; // file name the corrupt state was moved to
}

export const BOOT_STATE_FILE = "boot-state.json";
export const COMPONENT_ID = /^0x[0-9a-f]{64}$/;

const bytes32 = z.string().regex(COMPONENT_ID);
const decimal = z.string().regex(/^(0|[1-9]\d*)$/);
const slotName = z.enum(["a", "b"]);
const count = z.number().int().nonnegative();
/** The shape of a SlotImage, also used to check images handed to the slot store. */
export const slotImageSchema = z.strictObject({
  releaseId: bytes32,
  version: decimal.refine((v) => /^\d+$/.test(v) && isValidVersion(BigInt(v)), "not an encoded version"),
  fileHash: bytes32,
  size: count,
});
const componentSchema = z.strictObject({
  active: slotName,
  slots: z.strictObject({ a: slotImageSchema.nullable(), b: slotImageSchema.nullable() }),
  trial: z.strictObject({ slot: slotName, attemptsLeft: count, startedAt: count, bundle: bytes32.optional() }).nullable(),
  floor: decimal,
});
const bootStateSchema = z.strictObject({
  format: z.literal(1),
  components: z.record(bytes32, componentSchema),
  failedReleases: z.record(bytes32, z.strictObject({ at: count, code: z.string() })),
  lastResult: z
    .strictObject({
      releaseId: bytes32,
      component: bytes32,
      outcome: z.enum(["confirmed", "rolled-back", "failed"]),
      code: z.string(),
      at: count,
      reported: z.boolean(),
    })
    .nullable(),
  counter: count,
  safeMode: z.strictObject({ since: count, reason: z.string(), keptAs: z.string().nullable() }).optional(),
});

export function emptyBootState(): BootState {
  return { format: 1, components: {}, failedReleases: {}, lastResult: null, counter: 0 };
}

export function bootStatePath(root: string): string {
  return path.join(root, BOOT_STATE_FILE);
}

/**
 * Reads the boot state. A missing file is a fresh device, unless slot directories exist: then the
 * state was lost, and starting empty would drop the floor and the counter, so it is corrupt too.
 * I/O errors other than a missing file are thrown, not reported as corruption.
 */
export async function loadBootState(root: string): Promise<{ state: BootState; fresh?: true } | { corrupt: string }> {
  let text: string;
  try {
    text = await fs.readFile(bootStatePath(root), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    if (await hasSlotDirectories(root)) return { corrupt: `${BOOT_STATE_FILE} is missing but slot directories exist` };
    return { state: emptyBootState(), fresh: true };
  }
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    return { corrupt: "not valid JSON (torn or garbled)" };
  }
  const { sha256, state } = (envelope ?? {}) as { sha256?: unknown; state?: unknown };
  if (typeof sha256 !== "string" || state === undefined) return { corrupt: "no checksum envelope" };
  if (checksum(state) !== sha256) return { corrupt: "checksum mismatch" };
  const parsed = bootStateSchema.safeParse(state);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { corrupt: `unexpected content at ${issue.path.join(".") || "(root)"}: ${issue.message}` };
  }
  return { state: parsed.data as BootState };
}

/** Replaces the boot state atomically; refuses (throws) a state that would not load again. */
export async function saveBootState(root: string, state: BootState): Promise<void> {
  const parsed = bootStateSchema.safeParse(state);
  if (!parsed.success) {
    throw new SlotInputError("BOOT_STATE_INVALID", `refusing to save a boot state that would not load: ${parsed.error.issues[0].path.join(".")}`, {
      details: { issues: parsed.error.issues },
    });
  }
  const body = JSON.parse(JSON.stringify(state)) as unknown; // drops undefined fields, as a reload would
  await writeFileAtomic(bootStatePath(root), JSON.stringify({ sha256: checksum(body), state: body }, null, 2) + "\n");
}

function checksum(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

/** JSON with object keys sorted at every level, so the checksum does not depend on key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function hasSlotDirectories(root: string): Promise<boolean> {
  try {
    return (await fs.readdir(root)).some((name) => COMPONENT_ID.test(name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
