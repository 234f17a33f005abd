import { importer } from "ipfs-unixfs-importer";
import type { Chunker } from "ipfs-unixfs-importer/dist/src/chunker/index.js";
import type { FileLayout } from "ipfs-unixfs-importer/dist/src/layout/index.js";

/**
 * The IPFS CID of an artifact, computed the same way by the author (before upload), by every
 * content store and by a device that re-checks it. The import settings are fixed here and are
 * Helia's defaults, so a Helia node given the same bytes yields the same CID:
 *
 *   CIDv1, raw leaves, fixed-size 1 MiB chunks, balanced DAG of at most 1024 links per node,
 *   a file of one chunk reduced to that raw block (its CID is then bafkrei...).
 *
 * A ledger link therefore implies its settings: a link made otherwise would not match.
 */
export const IMPORT_SETTINGS = {
  cidVersion: 1 as const,
  rawLeaves: true,
  chunkSize: 1024 * 1024,
  maxChildrenPerNode: 1024,
  reduceSingleLeafToSelf: true,
};

// Subpath modules are ESM with "exports"; load them at run time (Node 20.19+ can require ESM).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fixedSize } = require("ipfs-unixfs-importer/chunker") as { fixedSize(o: { chunkSize: number }): Chunker };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { balanced } = require("ipfs-unixfs-importer/layout") as { balanced(o: { maxChildrenPerNode: number }): FileLayout };

/** The importer options every party uses. */
export function importOptions() {
  return {
    cidVersion: IMPORT_SETTINGS.cidVersion,
    rawLeaves: IMPORT_SETTINGS.rawLeaves,
    reduceSingleLeafToSelf: IMPORT_SETTINGS.reduceSingleLeafToSelf,
    chunker: fixedSize({ chunkSize: IMPORT_SETTINGS.chunkSize }),
    layout: balanced({ maxChildrenPerNode: IMPORT_SETTINGS.maxChildrenPerNode }),
  };
}

/** Computes the CID of a byte stream without storing anything (blocks are hashed and dropped). */
export async function computeCid(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const discard = { put: async (cid: unknown) => cid as never };
  let last: string | undefined;
  for await (const entry of importer([{ content }], discard, importOptions())) last = entry.cid.toString();
  if (!last) throw new Error("the importer produced no CID");
  return last;
}
