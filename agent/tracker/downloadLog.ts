import type { Wallet } from "ethers";
import { OtaError } from "../core/errors";
import { signAccountRequest } from "../crypto/requestSignature";
import type { FleetDatabase } from "./fleetDatabase";

const PAGE = 1000;

/**
 * Reads a firmware server's download log (CAP-11.3-f) into the fleet database, page by page from
 * the last entry taken: every download is a contact with its device, so liveness comes from the
 * communication log as well as from reports (CAP-11.2-b-i), and a device's detail shows what it
 * fetched. The requests are signed by the module's registered signer, which needs the registry's
 * TRACKER_ROLE for the server to answer.
 */
export async function pullDownloadLog(db: FleetDatabase, serverUrl: string, signer: Wallet): Promise<number> {
  const origin = new URL(serverUrl).origin;
  let taken = 0;
  for (;;) {
    const pathAndQuery = `/v1/downloads?after=${db.downloadCursor(origin)}&limit=${PAGE}`;
    const headers = await signAccountRequest(signer, { audience: origin, method: "GET", path: pathAndQuery });
    let res: Response;
    try {
      res = await fetch(new URL(pathAndQuery, origin), { headers, signal: AbortSignal.timeout(30_000) });
    } catch (cause) {
      throw new OtaError("FIRMWARE_SERVER_UNREACHABLE", `the firmware server at ${origin} does not answer; its download log is read again later`, { cause });
    }
    if (!res.ok) {
      const why = await res.json().then(
        (b) => (b as { error?: { code?: string; message?: string } }).error,
        () => undefined,
      );
      throw new OtaError(
        "DOWNLOAD_LOG_REFUSED",
        `the firmware server at ${origin} answered ${res.status}${why ? ` ${why.code}: ${why.message}` : ""} (the module's signer ${signer.address} needs TRACKER_ROLE)`,
      );
    }
    const { downloads } = (await res.json()) as {
      downloads: { id: number; at: number; deviceId: string; releaseId: string; kind: string; complete: boolean }[];
    };
    taken += db.takeDownloads(origin, downloads);
    if (downloads.length < PAGE) return taken;
  }
}
