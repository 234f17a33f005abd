import { ServerRefusedError } from "../net/serverAnswer";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { grantKeys, type GrantDeps, type GrantResult } from "./grantKeys";
import type { PreparedRelease } from "./publishRelease";
import { uploadArtifact, type UploadResult } from "./uploadArtifact";

export type GrantSelection = { deviceIds?: string[]; allEligible?: boolean; credentials?: DeviceCredential[] };

export type ReadyResult =
  | { ready: true; upload: UploadResult; grant?: GrantResult }
  /** The server does not take releases before they are published (an older server): publish, then submit and grant. */
  | { ready: false; refusal: ServerRefusedError };

/**
 * Makes a prepared release ready before it is visible (issue 17): saves its content key, submits
 * its artifact to the firmware server with the signed record (kept there "prepared", never served,
 * until the release is on the ledger) and grants the content key to the devices selected, so that
 * a device that hears the ReleasePublished event finds both at once. The caller then sends the
 * publishing transaction (publishPrepared). If that transaction never comes or fails, the prepared
 * artifact and its keys expire on the server (after its prepared lifetime, 7 days by default).
 *
 * A server that answers RELEASE_UNKNOWN does not know prepared submissions: the result says so
 * ({ready: false}) and the caller falls back to publishing first.
 */
export async function readyRelease(
  deps: GrantDeps,
  p: Pick<PreparedRelease, "releaseId" | "record" | "signature" | "signer" | "artifactFile" | "contentKey">,
  o: { grant?: GrantSelection; progress?: (done: bigint, total: bigint) => void } = {},
): Promise<ReadyResult> {
  // Kept before anything leaves this machine: a key lost after publication leaves a release no device can be granted.
  await deps.keys.save(p.releaseId, p.contentKey);
  let upload: UploadResult;
  try {
    upload = await uploadArtifact({ serverUrl: deps.serverUrl, author: deps.author }, p.releaseId, p.artifactFile, o.progress, {
      record: p.record,
      signature: p.signature,
      signer: p.signer,
    });
  } catch (err) {
    if (err instanceof ServerRefusedError && err.code === "RELEASE_UNKNOWN") return { ready: false, refusal: err };
    throw err;
  }
  if (!o.grant) return { ready: true, upload };
  const grant = await grantKeys(deps, p.releaseId, o.grant, { record: p.record });
  return { ready: true, upload, grant };
}
