import type { FleetRegistry } from "./contracts";
import { AuthenticationError } from "../core/errors";
import { decodeRevert } from "./revertReason";
import { queryLogs } from "./queryLogs";
import type { EventLog } from "ethers";

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

/** A module's registered signer and parent (ZeroHash for a server module); undefined if it, or one above it, is unknown or retired. */
export async function trackerModuleOf(fleet: FleetRegistry, moduleId: string): Promise<{ signer: string; parent: string } | undefined> {
  try {
    const [signer, parent] = await fleet.trackerModule(moduleId);
    return { signer, parent };
  } catch (err) {
    if (decodeRevert(err, [fleet.interface])?.name === "FleetRegistryUnknownTrackerModule") return undefined;
    throw err;
  }
}

/**
 * The public key a module registered for messages sealed to it (its latest registration), or
 * undefined. The registry keeps only its hash of it in storage terms: the key is in the event.
 */
export async function moduleEncryptionKey(fleet: FleetRegistry, moduleId: string, fromBlock: number): Promise<string | undefined> {
  const registered = (await queryLogs(fleet, fleet.filters.TrackerModuleRegistered(moduleId), fromBlock)) as EventLog[];
  return registered.at(-1)?.args.publicKey;
}
