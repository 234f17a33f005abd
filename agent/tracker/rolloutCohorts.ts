import { id as roleId } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { callLedger } from "../chain/ledgerCall";
import { UpdateRequestRefused } from "./updateRequests";

const ADMINISTRATOR_ROLE = roleId("ADMINISTRATOR_ROLE");

/** The request's signer must hold the registry's ADMINISTRATOR_ROLE (403 NOT_ADMINISTRATOR). */
export async function requireAdministrator(registry: UpdateRegistry, account: string): Promise<void> {
  if (!(await callLedger(() => registry.hasRole(ADMINISTRATOR_ROLE, account)))) {
    throw new UpdateRequestRefused("NOT_ADMINISTRATOR", `${account} does not hold ADMINISTRATOR_ROLE on the registry`);
  }
}
