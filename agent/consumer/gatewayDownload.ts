import { DownloadRejected } from "../core/updateErrors";
import type { ReleaseRecord } from "../core/release";
import { ServerRefusedError } from "../net/serverAnswer";
import { AnswerTooLargeError, readBoundedBody } from "../net/boundedBody";
import { refusalOf } from "../net/serverAnswer";
import { DownloadStalledError, type VerifiedArtifact } from "./downloadRelease";
import { blockMatches, cidString, DAG_PB, decodeFileNode, IpfsBlockError, parseCid, RAW, type BlockId } from "./ipfsBlock";

/** The largest block a gateway may answer with (IPFS's own limit is 2 MiB; artifacts use 1 MiB leaves). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024;

const DEFAULT_TIMEOUT_MS = 30_000;

export interface GatewayFetchOptions {
  gatewayUrl: string; // e.g. "https://ipfs.example.org": blocks are asked for at /ipfs/<cid>?format=raw
  release: { id: string; record: ReleaseRecord }; // from the ledger: its file link is the DAG's root CID
  sink: VerifiedArtifact; // where the bytes go, chunk by chunk against the ledger's Merkle root
  timeoutMs?: number; // longest wait for one block (ms)
}

/**
 * Reads a release's artifact from an IPFS trustless gateway (raw blocks, application/vnd.ipld.raw)
 * from the ledger's file link down, checking every block against its CID before using it, then
 * every stored chunk against the ledger's Merkle root (the sink), exactly as a download from a
 * firmware server is checked. Starts where the sink's verified bytes end: whole subtrees before
 * that point are skipped by the sizes their parent records. A gateway is untrusted and keyless:
 * it is asked for nothing but blocks, without the device's credential.
 */
export async function fetchFromGateway(o: GatewayFetchOptions): Promise<void> {
  let root: BlockId;
  try {
    root = parseCid(o.release.record.fileLink.replace(/^ipfs:\/\//, ""));
  } catch (err) {
    throw new DownloadRejected("MANIFEST_INVALID", `the ledger's file link ${o.release.record.fileLink} is not a CID a gateway can serve`, { cause: err });
  }
  const walk = async (id: BlockId, start: number, depth: number): Promise<void> => {
    if (depth > 16) throw new DownloadRejected("ARTIFACT_FORMAT", "the artifact's DAG is deeper than any import makes it");
    const block = await fetchBlock(o, id);
    if (id.codec === RAW) {
      if (start + block.length > o.sink.position) await o.sink.push(block.subarray(Math.max(0, o.sink.position - start)));
      return;
    }
    let node;
    try {
      node = decodeFileNode(block);
    } catch (err) {
      if (err instanceof IpfsBlockError) throw new DownloadRejected("ANSWER_MALFORMED", `block ${cidString(id)}: ${err.message}`, { cause: err });
      throw err;
    }
    let at = start;
    if (node.data.length > 0) {
      if (at + node.data.length > o.sink.position) await o.sink.push(node.data.subarray(Math.max(0, o.sink.position - at)));
      at += node.data.length;
    }
    for (const link of node.links) {
      if (o.sink.complete) return;
      if (at + link.size > o.sink.position) {
        if (at > o.sink.position) throw new DownloadRejected("ANSWER_MALFORMED", `block ${cidString(id)}: its block sizes skip bytes of the file`);
        await walk(link.id, at, depth + 1);
      }
      at += link.size;
    }
  };
  await walk(root, 0, 0);
  o.sink.dropPartial();
}

async function fetchBlock(o: GatewayFetchOptions, id: BlockId): Promise<Buffer> {
  const cid = cidString(id);
  // Relative to the gateway's URL, so a gateway served under a path (https://host/some/prefix) works too.
  const url = new URL(`ipfs/${cid}?format=raw`, o.gatewayUrl.endsWith("/") ? o.gatewayUrl : o.gatewayUrl + "/");
  const ms = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = AbortSignal.timeout(ms);
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: "application/vnd.ipld.raw" }, signal });
  } catch (cause) {
    if (signal.aborted) throw new DownloadStalledError("DOWNLOAD_STALLED", `block ${cid}: ${o.gatewayUrl} did not answer within ${ms} ms`);
    throw new ServerRefusedError("SERVER_UNREACHABLE", `block ${cid}: no answer from ${o.gatewayUrl}`, 0, { cause: String(cause) });
  }
  if (res.status === 404 || res.status === 410) {
    await res.body?.cancel().catch(() => {});
    throw new ServerRefusedError("ARTIFACT_NOT_AVAILABLE", `block ${cid}: ${o.gatewayUrl} does not have it (${res.status})`, res.status, { block: cid });
  }
  if (!res.ok) throw await refusalOf(res, `block ${cid}`, o.gatewayUrl);
  if (!(res.headers.get("content-type") ?? "").startsWith("application/vnd.ipld.raw")) {
    await res.body?.cancel().catch(() => {});
    throw new DownloadRejected(
      "ANSWER_MALFORMED",
      `block ${cid}: ${o.gatewayUrl} answered ${res.headers.get("content-type") ?? "no content type"}, not a raw block: it is not a trustless gateway`,
    );
  }
  let block: Buffer;
  try {
    block = await readBoundedBody(res, MAX_BLOCK_BYTES, `block ${cid}`);
  } catch (err) {
    if (err instanceof AnswerTooLargeError) throw new DownloadRejected("ANSWER_TOO_LARGE", err.message, { details: { block: cid } });
    if (signal.aborted) throw new DownloadStalledError("DOWNLOAD_STALLED", `block ${cid}: ${o.gatewayUrl} stopped sending for longer than ${ms} ms`);
    throw new DownloadStalledError("DOWNLOAD_INTERRUPTED", `block ${cid}: the connection to ${o.gatewayUrl} broke`, { cause: err });
  }
  if (!blockMatches(id, block))
    throw new DownloadRejected("CHUNK_MISMATCH", `block ${cid} from ${o.gatewayUrl} does not hash to its CID: the gateway altered it`, {
      details: { block: cid },
    });
  if (id.codec !== RAW && id.codec !== DAG_PB) throw new DownloadRejected("ARTIFACT_FORMAT", `block ${cid} is neither raw nor dag-pb`);
  return block;
}
