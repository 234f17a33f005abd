import { createReadStream, promises as fs } from "node:fs";
import { Readable } from "node:stream";
import { InputError } from "../core/errors";
import { refusalOf, ServerRefusedError } from "../io/serverAnswer";

/**
 * Submits an artifact to the firmware server (CAP-11.3-a), streaming it from disk. The server
 * checks it against the release's ledger record and pins it if it matches.
 */
export async function uploadArtifact(
  serverUrl: string,
  releaseId: string,
  artifactFile: string,
  progress?: (done: bigint, total: bigint) => void,
): Promise<{ cid: string; status: number }> {
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
  let res: Response;
  try {
    res = await fetch(new URL(`/v1/releases/${releaseId}/artifact`, serverUrl), {
      method: "POST",
      headers: { "content-type": "application/octet-stream", "content-length": total.toString() },
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
