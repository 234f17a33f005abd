import { AbiCoder, keccak256, getBytes } from "ethers";
import { MerkleTree } from "merkletreejs";
import { InputError } from "../core/errors";

/**
 * Device records as Merkle leaves, matching contracts/libraries/DeviceRecords.sol:
 *   leaf = keccak256(keccak256(abi.encode(id, keccak256(publicKey), hardwareClass, network, region)))
 * The double hash keeps a leaf from being read as an inner node. Pairs are sorted before hashing
 * (merkletreejs sortPairs; OpenZeppelin MerkleProof on-chain).
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
  for (const r of records) {
    const id = r.id.toLowerCase();
    if (seen.has(id)) {
      throw new InputError("DEVICE_BATCH_DUPLICATE", `device ${r.id} appears twice in the batch; give each device one record`);
    }
    seen.add(id);
  }
  const leaves = records.map((r) => Buffer.from(getBytes(deviceLeaf(r))));
  const tree = new MerkleTree(leaves, keccak256Buffer, { sortPairs: true });
  return {
    root: tree.getHexRoot(),
    proofs: leaves.map((leaf) => tree.getHexProof(leaf)),
  };
}

function keccak256Buffer(data: Buffer): Buffer {
  return Buffer.from(getBytes(keccak256(data)));
}
