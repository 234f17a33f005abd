import { isHexString } from "ethers";
import { InputError } from "../core/errors";
import { checkDeviceRecord, DeviceRecord } from "./deviceTree";

/**
 * What a device shows to prove its enrolment: its record and, for a batch-enrolled device, the
 * batch id and Merkle proof (batch 0 and no proof when enrolled singly). Anyone can check it
 * against the fleet registry (deviceStanding); the request signature proves the device holds the
 * record's key. Sent as base64url JSON in the x-ota-device header.
 */
export interface DeviceCredential {
  record: DeviceRecord;
  batchId: number;
  proof: string[];
}

export function encodeDeviceCredential(c: DeviceCredential): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

export function decodeDeviceCredential(encoded: string): DeviceCredential {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    throw new InputError("CREDENTIAL_MALFORMED", "the device credential is not base64url JSON");
  }
  const c = parsed as Partial<DeviceCredential>;
  if (!c || typeof c !== "object" || !c.record || typeof c.record !== "object") {
    throw new InputError("CREDENTIAL_MALFORMED", "the device credential has no record");
  }
  checkDeviceRecord(c.record);
  if (!Number.isSafeInteger(c.batchId) || (c.batchId as number) < 0) {
    throw new InputError("CREDENTIAL_MALFORMED", "batchId must be 0 (enrolled singly) or a batch id");
  }
  if (!Array.isArray(c.proof) || c.proof.length > 64 || !c.proof.every((p) => isHexString(p, 32))) {
    throw new InputError("CREDENTIAL_MALFORMED", "proof must be a list of at most 64 32-byte hashes");
  }
  return { record: c.record, batchId: c.batchId as number, proof: c.proof };
}
