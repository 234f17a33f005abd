import { createReadStream, promises as fs } from "node:fs";
import { Readable } from "node:stream";
import { InputError } from "../core/errors";
import { refusalOf, ServerRefusedError } from "../net/serverAnswer";
import { signAccountRequest } from "../crypto/requestSignature";
import { encodeReleaseClaim, RELEASE_CLAIM_HEADER, type ReleaseClaim } from "../core/releaseClaim";

export interface UploadResult {
  cid: string;
  status: number; // 201 accepted now, 200 already held
  /** "prepared": held for a release not yet on the ledger, never served until it is, removed at expiresAt if it never is. */
  state: "prepared" | "serving";
  expiresAt?: number; // ms since the epoch
}

/**
 * Submits an artifact to the firmware server (CAP-11.3-a), streaming it from disk, in a request
 * signed by the author (an author of the release's provider on the ledger, as for key grants).
 * The signature covers the request, not the bytes: the server checks those against the release's
 * ledger record and pins them if they match.
 *
 * With `claim` (the signed record of a release not yet published: issue 17), the server checks
 * the claim as the registry will (author, id, signature, registered signer, no bar), screens the
 * bytes against it and keeps them "prepared" until the release is on the ledger; an older server
 * ignores the claim and answers RELEASE_UNKNOWN.
 */
export async function uploadArtifact(
  deps: {
    serverUrl: string;
    author: { address: string; signMessage(m: string): Promise<string> };
    /** where to post (default the release's artifact; a delta's: deltaRoutes.ts) */ pathname?: string;
  },
  releaseId: string,
  artifactFile: string,
  progress?: (done: bigint, total: bigint) => void,
  claim?: ReleaseClaim,
): Promise<UploadResult> {
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
  const pathname = deps.pathname ?? `/v1/releases/${releaseId.toLowerCase()}/artifact`;
  const signed = await signAccountRequest(deps.author, { audience: serverUrl, method: "POST", path: pathname });
  let res: Response;
  try {
    res = await fetch(new URL(pathname, serverUrl), {
      method: "POST",
      headers: {
        ...signed,
        "content-type": "application/octet-stream",
        "content-length": total.toString(),
        ...(claim ? { [RELEASE_CLAIM_HEADER]: encodeReleaseClaim(claim) } : {}),
      },
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
  const answer = (await res.json()) as { cid: string; state?: "prepared" | "serving"; expiresAt?: number };
  return {
    cid: answer.cid,
    status: res.status,
    state: answer.state ?? "serving",
    ...(answer.expiresAt === undefined ? {} : { expiresAt: answer.expiresAt }),
  };
}
