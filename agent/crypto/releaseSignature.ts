import { TypedDataDomain, TypedDataEncoder, Signer, verifyTypedData } from "ethers";
import type { ReleaseRecord } from "../core/release";
import { getBytes } from "ethers";
import { recoverAddress } from "./secp256k1";

/**
 * EIP-712 release signatures, matching contracts/libraries/ReleaseHashing.sol. The digest of a
 * record under the registry's domain is also its release id.
 */

export const RELEASE_EIP712_NAME = "OTA Ledger UpdateRegistry";
export const RELEASE_EIP712_VERSION = "1";

export const RELEASE_TYPES = {
  Release: [
    { name: "provider", type: "uint32" },
    { name: "component", type: "bytes32" },
    { name: "version", type: "uint64" },
    { name: "fileHash", type: "bytes32" },
    { name: "fileLink", type: "string" },
    { name: "fileName", type: "string" },
    { name: "fileSize", type: "uint64" },
    { name: "merkleRoot", type: "bytes32" },
    { name: "hardware", type: "uint16[]" },
    { name: "dependencies", type: "Dependency[]" },
  ],
  Dependency: [
    { name: "component", type: "bytes32" },
    { name: "minVersion", type: "uint64" },
    { name: "maxVersion", type: "uint64" },
  ],
};

/** The EIP-712 domain of the registry deployed at `registry` on `chainId`. */
export function registryDomain(chainId: bigint | number, registry: string): TypedDataDomain {
  return {
    name: RELEASE_EIP712_NAME,
    version: RELEASE_EIP712_VERSION,
    chainId,
    verifyingContract: registry,
  };
}

/** The release id: the EIP-712 digest of the record. */
export function computeReleaseId(domain: TypedDataDomain, record: ReleaseRecord): string {
  return TypedDataEncoder.hash(domain, RELEASE_TYPES, record);
}

/** The author's signature over the record. */
export async function signRelease(signer: Signer, domain: TypedDataDomain, record: ReleaseRecord): Promise<string> {
  return signer.signTypedData(domain, RELEASE_TYPES, record);
}

/** The address that produced `signature` over the record (for EOA signers). */
export function recoverReleaseSigner(domain: TypedDataDomain, record: ReleaseRecord, signature: string): string {
  return verifyTypedData(domain, RELEASE_TYPES, record, signature);
}

/**
 * The account that signed a release whose id (its EIP-712 digest) is already known to be the
 * record's, e.g. one decoded from its event (decodeReleasePublished checks it): no second hash of
 * the record, and libsecp256k1 where it loads.
 */
export function recoverReleaseSignerOf(releaseId: string, signature: string): string {
  return recoverAddress(getBytes(releaseId), signature);
}
