import type { FleetRegistry } from "../../typechain-types";
import { AuthenticationError } from "../core/errors";
import { decodeRevert } from "../chain/revertReason";

/**
 * Whether a message from tracker module `moduleId` was signed by the key the ledger registers for
 * it (CAP-11.2-d): the module, and every module above it, must be registered and not retired.
 * Throws `make(code, message)` with NOT_REGISTERED or SIGNATURE; returns the module's signer.
 */
export async function verifyModuleSender<E extends AuthenticationError>(
  fleet: FleetRegistry,
  moduleId: string,
  signedBy: string,
  make: (code: "NOT_REGISTERED" | "SIGNATURE", message: string) => E,
): Promise<string> {
  let signer: string;
  try {
    [signer] = await fleet.trackerModule(moduleId);
  } catch (err) {
    if (decodeRevert(err, [fleet.interface])?.name === "FleetRegistryUnknownTrackerModule") {
      throw make("NOT_REGISTERED", `module ${moduleId} (or one above it) is not registered or was retired on the ledger`);
    }
    throw err;
  }
  if (signedBy.toLowerCase() !== signer.toLowerCase()) throw make("SIGNATURE", `the message is not signed by module ${moduleId}'s registered key ${signer}`);
  return signer;
}
