import { NonceManager, id as roleId, type ContractTransactionReceipt, type ContractTransactionResponse, type Signer } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { OtaError } from "../core/errors";
import { callLedger, isLedgerOutage, LedgerUnavailable } from "../chain/ledgerCall";

const TRACKER_ROLE = roleId("TRACKER_ROLE");

/** The ledger refused a transaction of the tracker's account (a missing role, no gas, a revert). */
export class LedgerAccountRefused extends OtaError {}

/**
 * The account a server module sends its ledger duties with (issue 6): failure totals to staged
 * rollouts and status anchors. It needs the registry's TRACKER_ROLE and gas. Transactions are
 * sent one at a time with counted nonces (ethers answers identical requests from a short cache,
 * so asking the node for each nonce is not enough); a failed send resets the count. Errors say
 * what to do: a missing role names the `ota-ledger tracker grant` fix; an outage is
 * LEDGER_UNAVAILABLE, to retry.
 */
export class LedgerAccount {
  readonly signer: NonceManager;
  private queue: Promise<unknown> = Promise.resolve();
  private address: string | undefined;

  constructor(
    account: Signer,
    private readonly registry: UpdateRegistry,
  ) {
    this.signer = account instanceof NonceManager ? account : new NonceManager(account);
  }

  async getAddress(): Promise<string> {
    return (this.address ??= await this.signer.getAddress());
  }

  /** Sends the transaction `build` makes, waits for its receipt; sends never overlap. `what` names it in errors. */
  send(what: string, build: (signer: Signer) => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    const run = this.queue.catch(() => {}).then(() => this.sendNow(what, build));
    this.queue = run.catch(() => {});
    return run;
  }

  private async sendNow(what: string, build: (signer: Signer) => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    try {
      const tx = await build(this.signer);
      const receipt = await tx.wait();
      if (!receipt || receipt.status !== 1) throw new LedgerAccountRefused("LEDGER_REVERTED", `${what}: the transaction ${tx.hash} failed on the ledger`);
      return receipt;
    } catch (err) {
      this.signer.reset(); // a transaction not sent must not leave a gap in the nonces
      if (err instanceof OtaError) throw err;
      if (isLedgerOutage(err)) throw new LedgerUnavailable("LEDGER_UNAVAILABLE", `${what}: the ledger did not answer`, { cause: err });
      const address = await this.getAddress();
      const code = (err as { code?: string }).code;
      if (code === "INSUFFICIENT_FUNDS")
        throw new LedgerAccountRefused("LEDGER_ACCOUNT_NO_GAS", `${what}: the tracker's ledger account ${address} cannot pay for gas: fund it`, { cause: err });
      if (code === "CALL_EXCEPTION") {
        const holds = await callLedger(() => this.registry.hasRole(TRACKER_ROLE, address)).catch(() => undefined);
        if (holds === false) {
          throw new LedgerAccountRefused(
            "TRACKER_ROLE_MISSING",
            `${what}: the tracker's ledger account ${address} does not hold TRACKER_ROLE on the registry: an administrator grants it with \`ota-ledger tracker grant ${address}\``,
            { cause: err },
          );
        }
        throw new LedgerAccountRefused("LEDGER_REVERTED", `${what}: the ledger refused it (${(err as { shortMessage?: string }).shortMessage ?? "reverted"})`, {
          cause: err,
        });
      }
      throw new OtaError("LEDGER_SEND_FAILED", `${what}: ${(err as { shortMessage?: string }).shortMessage ?? (err as Error).message.split("\n")[0]}`, {
        cause: err,
      });
    }
  }
}
