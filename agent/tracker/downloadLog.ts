import type { Wallet } from "ethers";
import { OtaError } from "../core/errors";
import { signAccountRequest } from "../crypto/requestSignature";
import type { FleetStore } from "./store";
import { readBoundedJson } from "../net/boundedBody";
import { ERROR_ANSWER_MAX_BYTES } from "../core/wireLimits";

const PAGE = 1000;
/** Pages read in one pull at most: a server that keeps answering fresh entries is read again at the next pull, not for ever. */
const PAGES_PER_PULL = 100;

/**
 * Reads a firmware server's download log (CAP-11.3-f) into the fleet database, page by page from
 * the last entry taken: every download is a contact with its device, so liveness comes from the
 * communication log as well as from reports (CAP-11.2-b-i), and a device's detail shows what it
 * fetched. The requests are signed by the module's registered signer, which needs the registry's
 * TRACKER_ROLE for the server to answer.
 */
export async function pullDownloadLog(db: FleetStore, serverUrl: string, signer: Wallet, now: () => number = Date.now): Promise<number> {
  const origin = new URL(serverUrl).origin;
  let taken = 0;
  for (let pages = 0; pages < PAGES_PER_PULL; pages++) {
    const pathAndQuery = `/v1/downloads?after=${db.downloads.cursor(origin)}&limit=${PAGE}`;
    const headers = await signAccountRequest(signer, { audience: origin, method: "GET", path: pathAndQuery });
    let res: Response;
    try {
      res = await fetch(new URL(pathAndQuery, origin), { headers, signal: AbortSignal.timeout(30_000) });
    } catch (cause) {
      throw new OtaError("FIRMWARE_SERVER_UNREACHABLE", `the firmware server at ${origin} does not answer; its download log is read again later`, { cause });
    }
    if (!res.ok) {
      const why = (
        (await readBoundedJson(res, ERROR_ANSWER_MAX_BYTES, `the download log of ${origin}`).catch(() => undefined)) as
          { error?: { code?: string; message?: string } } | undefined
      )?.error;
      throw new OtaError(
        "DOWNLOAD_LOG_REFUSED",
        `the firmware server at ${origin} answered ${res.status}${why ? ` ${why.code}: ${why.message}` : ""} (the module's signer ${signer.address} needs TRACKER_ROLE)`,
      );
    }
    // The server is not trusted for availability: a page is read up to what PAGE entries can take (under 300 bytes each).
    const page = (await readBoundedJson(res, PAGE * 1024, `the download log of ${origin}`)) as {
      downloads?: { id: number; at: number; deviceId: string; releaseId: string; kind: string; complete: boolean }[];
    };
    if (!Array.isArray(page?.downloads))
      throw new OtaError("DOWNLOAD_LOG_MALFORMED", `the firmware server at ${origin} answered a download log that is not {downloads: [...]}`);
    // A page holds PAGE entries at most, whatever the server sends.
    const downloads = page.downloads.slice(0, PAGE);
    const cursor = db.downloads.cursor(origin);
    taken += db.downloads.take(origin, downloads, now());
    // A full page that moved the cursor nothing (entries malformed, or not after it): the server
    // is not paging as asked; stop here rather than ask for the same page again.
    if (downloads.length < PAGE || db.downloads.cursor(origin) === cursor) return taken;
  }
  return taken;
}
