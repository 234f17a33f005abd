import { AbiCoder, keccak256, isHexString, ZeroHash } from "ethers";
import { curve } from "./secp256k1";
import { buildSortedTree, verifySortedProof } from "./merkle";
import { InputError } from "../core/errors";

/**
 * Device records as Merkle leaves, matching contracts/libraries/DeviceRecords.sol:
 *   leaf = keccak256(keccak256(abi.encode(id, keccak256(publicKey), hardwareClass, network, region)))
 * The double hash keeps a leaf from being read as an inner node. The tree is a sorted-pair tree of
 * merkle.ts (OpenZeppelin MerkleProof on-chain).
 */
export interface DeviceRecord {
  id: string; // bytes32
  publicKey: string; // 33-byte compressed secp256k1 key, hex
  hardwareClass: number;
  network: string; // bytes32 label
  region: string; // bytes32 label: geographic region or logical group
}

const coder = AbiCoder.defaultAbiCoder();

export function deviceLeaf(record: DeviceRecord): string {
  const inner = keccak256(
    coder.encode(
      ["bytes32", "bytes32", "uint16", "bytes32", "bytes32"],
      [record.id, keccak256(record.publicKey), record.hardwareClass, record.network, record.region],
    ),
  );
  return keccak256(inner);
}

export interface DeviceBatch {
  root: string;
  /** The proof for each record, in the order given. */
  proofs: string[][];
}

/** Builds the Merkle tree of a batch of device records. */
export function buildDeviceBatch(records: DeviceRecord[]): DeviceBatch {
  if (records.length === 0) throw new InputError("DEVICE_BATCH_EMPTY", "a device batch needs at least one record");
  const seen = new Set<string>();
  for (const [i, r] of records.entries()) {
    checkDeviceRecord(r, i);
    const id = r.id.toLowerCase();
    if (seen.has(id)) {
      throw new InputError("DEVICE_BATCH_DUPLICATE", `device ${r.id} appears twice in the batch; give each device one record`);
    }
    seen.add(id);
  }
  return buildSortedTree(records.map(deviceLeaf));
}

/**
 * Whether `proof` shows `record` in the batch with this root, as OpenZeppelin's MerkleProof (sorted
 * pairs) checks it on-chain in FleetRegistry.deviceStanding.
 */
export function verifyDeviceProof(record: DeviceRecord, proof: string[], root: string): boolean {
  return verifySortedProof(deviceLeaf(record), proof, root);
}

/**
 * The checks enrolDevice makes on-chain, for records of a batch (which the chain cannot check):
 * a non-zero 32-byte id, a compressed secp256k1 key on the curve, a hardware class id in 1..65535,
 * and 32-byte network and region labels.
 */
export function checkDeviceRecord(record: DeviceRecord, index = 0): void {
  const fail = (what: string): never => {
    throw new InputError("DEVICE_RECORD_INVALID", `device record ${index} (${record.id}): ${what}`, { details: { index } });
  };
  if (!isHexString(record.id, 32) || record.id === ZeroHash) fail("id must be a non-zero 32-byte hex value");
  if (!isHexString(record.publicKey, 33) || !/^0x0[23]/i.test(record.publicKey)) {
    fail("public key must be a 33-byte compressed secp256k1 key (0x02... or 0x03...)");
  }
  // libsecp256k1 where it loads: ethers' JavaScript square root cost a firmware server about 0.6 ms per device (issue 17).
  if (!curve.isPublicKey(Buffer.from(record.publicKey.slice(2), "hex"))) fail("public key is not a point on secp256k1");
  if (!Number.isInteger(record.hardwareClass) || record.hardwareClass < 1 || record.hardwareClass > 0xffff) {
    fail("hardware class must be a registered class id in 1..65535");
  }
  if (!isHexString(record.network, 32)) fail("network must be a 32-byte label (ethers.encodeBytes32String)");
  if (!isHexString(record.region, 32)) fail("region must be a 32-byte label (ethers.encodeBytes32String)");
}
