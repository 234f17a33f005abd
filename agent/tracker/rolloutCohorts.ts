import { id as roleId, isHexString } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { callLedger } from "../chain/ledgerCall";
import { InputError } from "../core/errors";
import { UpdateRequestRefused } from "./updateRequests";

/** An administrator's cohorts for a staged rollout (POST /v1/rollouts/:releaseId/cohorts). */
export interface CohortsRequest {
  waves: string[][];
}

export const MAX_WAVES = 64; // as StagedRollout.MAX_WAVES
export const MAX_WAVE_DEVICES = 100_000;
export const MAX_COHORT_DEVICES = 200_000; // over all waves (a request body is at most 16 MiB)

const ADMINISTRATOR_ROLE = roleId("ADMINISTRATOR_ROLE");
const DEVICE_ID = /^0x[0-9a-fA-F]{64}$/;

/** The body as it must be, or BAD_REQUEST saying what to fix. */
export function parseCohortsRequest(input: unknown): CohortsRequest {
  const fail = (m: string): never => {
    throw new InputError("BAD_REQUEST", m);
  };
  if (!input || typeof input !== "object" || Array.isArray(input)) fail('the body is a JSON object {"waves": [["0x<deviceId>", ...], ...]}');
  const extra = Object.keys(input as object).filter((k) => k !== "waves");
  if (extra.length) fail(`unknown field(s) ${extra.join(", ")}: the body has only "waves"`);
  const waves = (input as { waves?: unknown }).waves;
  if (!Array.isArray(waves) || waves.length < 1 || waves.length > MAX_WAVES) fail(`waves must be a list of 1 to ${MAX_WAVES} waves, in the rollout's order`);
  let total = 0;
  (waves as unknown[]).forEach((wave, i) => {
    if (!Array.isArray(wave) || wave.length < 1 || wave.length > MAX_WAVE_DEVICES) fail(`wave ${i} must be a list of 1 to ${MAX_WAVE_DEVICES} device ids`);
    const bad = (wave as unknown[]).findIndex((d) => typeof d !== "string" || !DEVICE_ID.test(d));
    if (bad >= 0) fail(`wave ${i}, device ${bad}: a device id is 0x followed by 64 hex digits`);
    const seen = new Set<string>();
    (wave as string[]).forEach((d, k) => {
      const key = d.toLowerCase();
      if (BigInt(d) === 0n) fail(`wave ${i}, device ${k}: the zero id is no device`);
      if (seen.has(key)) fail(`wave ${i}, device ${k}: ${d} appears twice in the wave; list each device once`);
      seen.add(key);
    });
    total += (wave as unknown[]).length;
  });
  if (total > MAX_COHORT_DEVICES) fail(`the waves name ${total} device ids, more than ${MAX_COHORT_DEVICES}: split the rollout`);
  return { waves: waves as string[][] };
}

/** The request's signer must hold the registry's ADMINISTRATOR_ROLE (403 NOT_ADMINISTRATOR). */
export async function requireAdministrator(registry: UpdateRegistry, account: string): Promise<void> {
  if (!(await callLedger(() => registry.hasRole(ADMINISTRATOR_ROLE, account)))) {
    throw new UpdateRequestRefused("NOT_ADMINISTRATOR", `${account} does not hold ADMINISTRATOR_ROLE on the registry`, 403);
  }
}

export const isReleaseId = (s: string) => isHexString(s, 32);
