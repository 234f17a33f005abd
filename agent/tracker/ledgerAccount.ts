import {
  AbstractSigner,
  NonceManager,
  id as roleId,
  type ContractTransactionReceipt,
  type ContractTransactionResponse,
  type Provider,
  type Signer,
  type TransactionRequest,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { OtaError } from "../core/errors";
import { callLedger, isLedgerOutage, LedgerUnavailable } from "../chain/ledgerCall";
import { TRACKER_DEFAULTS } from "../core/serviceDefaults";

const TRACKER_ROLE = roleId("TRACKER_ROLE");

/** The ledger refused a transaction of the tracker's account (a missing role, no gas, a revert). */
export class LedgerAccountRefused extends OtaError {}

/** A transaction the account sent and has not yet seen buried (kept across restarts by a TxJournal). */
export interface SentTx {
  nonce: number;
  hash: string;
  what: string;
  sentAt: number; // ms
  maxFeePerGas: string | null; // wei, decimal; null for a legacy gas price in gasPrice
  gasPrice: string | null;
}

/** Where the account keeps what it sent (the tracker: its fleet database). */
export interface TxJournal {
  list(): SentTx[];
  put(tx: SentTx): void;
  remove(nonce: number): void;
}

/** In memory: enough for one process; a restart forgets (the tracker gives its database instead). */
export class MemoryTxJournal implements TxJournal {
  private readonly txs = new Map<number, SentTx>();
  list(): SentTx[] {
    return [...this.txs.values()].sort((a, b) => a.nonce - b.nonce);
  }
  put(tx: SentTx): void {
    this.txs.set(tx.nonce, tx);
  }
  remove(nonce: number): void {
    this.txs.delete(nonce);
  }
}

export interface LedgerAccountOptions {
  /** How long a transaction may wait to be mined before it is cancelled (default 180 s). */
  deadlineMs?: number;
  /** Between receipt polls (default 1 s). */
  pollMs?: number;
  /** Blocks after which a mined transaction is no longer watched for a reorganisation (default 64). */
  buriedAfter?: number;
  journal?: TxJournal;
  now?: () => number;
  log?: (line: string) => void;
}

/** The account's send was cut short by stop(). */
export class LedgerAccountStopped extends OtaError {}

/**
 * The account a server module sends its ledger duties with (issue 6): failure totals to staged
 * rollouts and status anchors. It needs the registry's TRACKER_ROLE and gas. Errors say what to
 * do: a missing role names the `ota-ledger tracker grant` fix; an outage is LEDGER_UNAVAILABLE.
 *
 * Every transaction is one of the module's duties of the moment, built fresh each round; an old
 * one must never be mined later (a status anchor of a root no tracker has records for). So
 * (issue 16): sends are one at a time; each waits for its receipt at most `deadlineMs`, and one not
 * mined by then is cancelled (a zero-value transfer to itself with the same nonce and higher fees);
 * what was sent is journalled, and before each send every journalled transaction is looked at
 * again: one that a reorganisation dropped (no receipt, its nonce not used) is cancelled in the
 * same way, so the nonces have no gap and nothing stale waits behind one. The nonce comes from
 * the node's count of mined transactions, read raw (ethers answers identical requests from a
 * short cache). stop() cuts a wait short.
 */
export class LedgerAccount {
  private readonly account: Signer;
  private queue: Promise<unknown> = Promise.resolve();
  private address: string | undefined;
  private readonly o: Required<Omit<LedgerAccountOptions, "log">> & { log: (line: string) => void };
  private readonly stopping = new AbortController();
  /** How many of its transactions were found not mined and cancelled: callers drop what they believed posted. */
  cancelled = 0;

  constructor(
    account: Signer,
    private readonly registry: UpdateRegistry,
    o: LedgerAccountOptions = {},
  ) {
    this.account = account instanceof NonceManager ? account.signer : account;
    if (!this.account.provider) throw new TypeError("the ledger account needs a provider");
    this.o = {
      deadlineMs: o.deadlineMs ?? TRACKER_DEFAULTS.ledgerTxDeadlineMs,
      pollMs: o.pollMs ?? TRACKER_DEFAULTS.ledgerTxPollMs,
      buriedAfter: o.buriedAfter ?? 64,
      journal: o.journal ?? new MemoryTxJournal(),
      now: o.now ?? Date.now,
      log: o.log ?? (() => {}),
    };
  }

  private get provider(): Provider & { send(method: string, params: unknown[]): Promise<unknown> } {
    return this.account.provider as Provider & { send(method: string, params: unknown[]): Promise<unknown> };
  }

  async getAddress(): Promise<string> {
    return (this.address ??= await this.account.getAddress());
  }

  /** Cuts short a send waiting for its receipt (LEDGER_ACCOUNT_STOPPED); what it sent stays journalled and is settled at the next start. */
  stop(): void {
    this.stopping.abort();
  }

  /** Sends the transaction `build` makes, waits for its receipt; sends never overlap. `what` names it in errors. */
  send(what: string, build: (signer: Signer) => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    const run = this.queue.catch(() => {}).then(() => this.sendNow(what, build));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Looks at every journalled transaction again and cancels the ones that must not be mined later; the next free nonce. */
  settle(): Promise<number> {
    const run = this.queue.catch(() => {}).then(() => this.settleNow());
    this.queue = run.catch(() => {});
    return run;
  }

  private async settleNow(): Promise<number> {
    const address = await this.getAddress();
    const mined = Number(await this.provider.send("eth_getTransactionCount", [address, "latest"]));
    const head = Number(await this.provider.send("eth_blockNumber", []));
    let next = mined;
    for (const tx of this.o.journal.list()) {
      const receipt = (await this.provider.send("eth_getTransactionReceipt", [tx.hash])) as { blockNumber: string } | null;
      if (receipt) {
        if (head - Number(receipt.blockNumber) >= this.o.buriedAfter) this.o.journal.remove(tx.nonce);
        continue;
      }
      if (tx.nonce < mined) {
        this.o.journal.remove(tx.nonce); // its nonce went to another transaction of ours (its cancel): it can never be mined
        continue;
      }
      // Not mined on this chain: waiting in a pool, stuck, or dropped by a reorganisation. Either way
      // it is of an earlier round; a transfer to itself takes its nonce.
      if (tx.what !== CANCEL) await this.cancelUnmined(tx, `${tx.what}: transaction ${tx.hash} (nonce ${tx.nonce}) was not mined`);
      next = Math.max(next, tx.nonce + 1);
    }
    return next;
  }

  private async sendNow(what: string, build: (signer: Signer) => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    let sent: SentTx | undefined;
    try {
      const nonce = await this.settleNow();
      const tx = await build(new PinnedNonceSigner(this.account, nonce));
      sent = { nonce, hash: tx.hash, what, sentAt: this.o.now(), maxFeePerGas: tx.maxFeePerGas?.toString() ?? null, gasPrice: tx.gasPrice?.toString() ?? null };
      this.o.journal.put(sent);
      const receipt = await this.waitMined(sent);
      if (!receipt) {
        await this.cancelUnmined(sent, `${what}: transaction ${tx.hash} was not mined within ${this.o.deadlineMs / 1000} s`);
        throw new LedgerUnavailable(
          "LEDGER_TX_DEADLINE",
          `${what}: the transaction ${tx.hash} was not mined within ${this.o.deadlineMs / 1000} s; it was cancelled and the next round sends a fresh one`,
        );
      }
      const full = await tx.wait(0); // ethers' receipt (logs parsed by the caller); mined already
      if (!full || full.status !== 1) throw new LedgerAccountRefused("LEDGER_REVERTED", `${what}: the transaction ${tx.hash} failed on the ledger`);
      return full;
    } catch (err) {
      if (err instanceof OtaError) throw err;
      if (this.stopping.signal.aborted) throw new LedgerAccountStopped("LEDGER_ACCOUNT_STOPPED", `${what}: stopped before its transaction was mined`);
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

  /** Whether the transaction `hash` is mined on the chain the node follows now (a reorganisation may have dropped it). */
  async isMined(hash: string): Promise<boolean> {
    return (await callLedger(() => this.provider.send("eth_getTransactionReceipt", [hash]))) !== null;
  }

  private async cancelUnmined(tx: SentTx, why: string): Promise<void> {
    this.cancelled++;
    await this.cancel(tx, why);
  }

  /** Polls for the receipt until the deadline (undefined then); stop() cuts it short. */
  private async waitMined(tx: SentTx): Promise<object | undefined> {
    const until = tx.sentAt + this.o.deadlineMs;
    for (;;) {
      if (this.stopping.signal.aborted) throw new LedgerAccountStopped("LEDGER_ACCOUNT_STOPPED", `${tx.what}: stopped before its transaction was mined`);
      const receipt = await this.provider.send("eth_getTransactionReceipt", [tx.hash]);
      if (receipt) return receipt as object;
      if (this.o.now() >= until) return undefined;
      await abortableDelay(Math.min(this.o.pollMs, Math.max(0, until - this.o.now())), this.stopping.signal);
    }
  }

  /**
   * Takes `tx`'s nonce with a zero-value transfer to itself, at twice the fees of the moment and
   * of `tx` (a pool replaces a transaction only for higher fees). Not waited for: the next settle
   * looks at it. A failure to send it is logged; the next settle tries again.
   */
  private async cancel(tx: SentTx, why: string): Promise<void> {
    try {
      const address = await this.getAddress();
      const fees = await this.provider.getFeeData();
      const twice = (a: bigint | null | undefined, b: string | null) => [a ?? 0n, b ? BigInt(b) : 0n].reduce((x, y) => (x > y ? x : y)) * 2n;
      const request: TransactionRequest =
        fees.maxFeePerGas !== null
          ? {
              maxFeePerGas: twice(fees.maxFeePerGas, tx.maxFeePerGas) + 1n,
              maxPriorityFeePerGas: twice(fees.maxPriorityFeePerGas, null) + 1n,
            }
          : { gasPrice: twice(fees.gasPrice, tx.gasPrice) + 1n };
      const sent = await this.account.sendTransaction({ to: address, value: 0n, nonce: tx.nonce, gasLimit: 21_000n, ...request });
      this.o.journal.put({
        nonce: tx.nonce,
        hash: sent.hash,
        what: CANCEL,
        sentAt: this.o.now(),
        maxFeePerGas: sent.maxFeePerGas?.toString() ?? null,
        gasPrice: sent.gasPrice?.toString() ?? null,
      });
      this.o.log(`ledger account: ${why}: cancelled with ${sent.hash} (same nonce, higher fees) so that it is never mined later`);
    } catch (err) {
      this.o.log(
        `ledger account: ${why}: cancelling it failed (${(err as { shortMessage?: string }).shortMessage ?? (err as Error).message}); tried again before the next send`,
      );
    }
  }
}

const CANCEL = "cancel";

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The account with one nonce set on what it sends (the contract call fills in the rest). */
class PinnedNonceSigner extends AbstractSigner {
  constructor(
    private readonly inner: Signer,
    private readonly nonce: number,
  ) {
    super(inner.provider);
  }
  getAddress(): Promise<string> {
    return this.inner.getAddress();
  }
  connect(provider: Provider | null): Signer {
    return new PinnedNonceSigner(this.inner.connect(provider), this.nonce);
  }
  signTransaction(tx: TransactionRequest): Promise<string> {
    return this.inner.signTransaction({ ...tx, nonce: this.nonce });
  }
  signMessage(message: string | Uint8Array): Promise<string> {
    return this.inner.signMessage(message);
  }
  signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    return this.inner.signTypedData(domain, types, value);
  }
  override sendTransaction(tx: TransactionRequest) {
    return this.inner.sendTransaction({ ...tx, nonce: this.nonce });
  }
}
