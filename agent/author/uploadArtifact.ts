import { createReadStream, promises as fs } from "node:fs";
import { Readable } from "node:stream";
import { InputError } from "../core/errors";
import { refusalOf, ServerRefusedError } from "../io/serverAnswer";
import { signAccountRequest } from "../crypto/requestSignature";

/**
 * Submits an artifact to the firmware server (CAP-11.3-a), streaming it from disk, in a request
 * signed by the author (an author of the release's provider on the ledger, as for key grants).
 * The signature covers the request, not the bytes: the server checks those against the release's
 * ledger record and pins them if they match.
 */
export async function uploadArtifact(
  deps: { serverUrl: string; author: { address: string; signMessage(m: string): Promise<string> } },
  releaseId: string,
  artifactFile: string,
  progress?: (done: bigint, total: bigint) => void,
): Promise<{ cid: string; status: number }> {
  const { serverUrl } = deps;
  const total = await fs.stat(artifactFile).then(
    (s) => BigInt(s.size),
    () => {
      throw new InputError("ARTIFACT_MISSING", `cannot read the artifact ${artifactFile}: give the file \`release publish\` wrote`);
    },
  );
  let sent = 0n;
  const body = Readable.from(
    (async function* () {
      for await (const piece of createReadStream(artifactFile, { highWaterMark: 1024 * 1024 })) {
        sent += BigInt(piece.length);
        progress?.(sent, total);
        yield piece as Buffer;
      }
    })(),
  );
  const pathname = `/v1/releases/${releaseId.toLowerCase()}/artifact`;
  const signed = await signAccountRequest(deps.author, { audience: serverUrl, method: "POST", path: pathname });
  let res: Response;
  try {
    res = await fetch(new URL(pathname, serverUrl), {
      method: "POST",
      headers: { ...signed, "content-type": "application/octet-stream", "content-length": total.toString() },
      body: Readable.toWeb(body) as unknown as RequestInit["body"],
      duplex: "half",
    } as RequestInit);
  } catch (cause) {
    throw new ServerRefusedError(
      "SERVER_UNREACHABLE",
      `no firmware server answers at ${serverUrl}: start it (\`ota-ledger server start\`) or fix serverUrl`,
      0,
      { cause: String(cause) },
    );
  }
  if (!res.ok) throw await refusalOf(res, `submitting release ${releaseId}`);
  const answer = (await res.json()) as { cid: string };
  return { cid: answer.cid, status: res.status };
}
