import { OtaError } from "../core/errors";
import type { RpcSender } from "./eventStream";
import { readProvenFacts, type ProvenFacts, type ProvenQuery, type StoredRelease } from "./provenFacts";
import { shownEndpoint } from "./rpcEndpoint";
import { StateProofError } from "./stateProof";

/**
 * device.json `ledgerProofs` (docs/device.md, docs/adr/0010): whether the facts the device acts on
 * are proven with eth_getProof against a block header's state root.
 *   "auto" (default): on where the endpoint answers eth_getProof; off, with one log line, where it
 *          does not. Once it has answered, a later refusal is not taken as "unsupported" (a lying
 *          endpoint switching proofs off): it blocks as "on" does.
 *   "on":  required; without proofs the device does not decide (LEDGER_PROOF_UNAVAILABLE, blocked).
 *   "off": the device trusts its endpoint's eth_call answers.
 */
export const LEDGER_PROOFS_SETTINGS = ["auto", "on", "off"] as const;
export type LedgerProofsSetting = (typeof LEDGER_PROOFS_SETTINGS)[number];

/**
 * The endpoint's answers cannot be decided on: an eth_call answer disagrees with the proof
 * (LEDGER_PROOF_MISMATCH: a lying endpoint), a proof or header does not verify
 * (LEDGER_PROOF_INVALID), or proofs are required and the endpoint gives none
 * (LEDGER_PROOF_UNAVAILABLE). A blocked result (agent/core/updateOutcome), never the release's
 * failure: the release is tried again later, through whatever endpoint then answers honestly.
 */
export class LedgerProofRefused extends OtaError {}

/** Whether the endpoint says it has no eth_getProof (as opposed to failing to answer). */
export function isProofUnsupported(err: unknown): boolean {
  const e = err as {
    code?: unknown;
    error?: { code?: unknown; message?: unknown };
    info?: { error?: { code?: unknown; message?: unknown } };
    message?: unknown;
  };
  if (e?.code === "UNSUPPORTED_OPERATION") return true;
  const inner = e?.error ?? e?.info?.error ?? e;
  // -32601 method not found (JSON-RPC), -32004 method not supported (EIP-1474).
  if (inner?.code === -32601 || inner?.code === -32004) return true;
  const message = String(inner?.message ?? e?.message ?? "");
  return /eth_getProof.*(not (supported|available|found|allowed)|unsupported|does not exist)|method (not found|not supported)|unsupported method/i.test(
    message,
  );
}

/** One proven read, and the check of the endpoint's eth_call answers against it. */
export class ProvenView {
  constructor(
    readonly facts: ProvenFacts,
    private readonly endpoint: string,
    private readonly log?: (line: string) => void,
  ) {}

  /**
   * The overrides for the calls compared with these facts: asked at the proofs' block, since on a
   * chain that moves between the two reads "latest" is a newer block and an honest endpoint a liar.
   */
  get at(): { blockTag: number } {
    return { blockTag: this.facts.block.number };
  }

  /** The stored record of a release the read proved (status "none": the registry does not know the id). */
  release(id: string): StoredRelease | undefined {
    return this.facts.releases.get(id.toLowerCase());
  }

  /**
   * `called` (what eth_call answered) must be `proven`; otherwise the endpoint lied: one log line
   * names it and the device refuses to decide (LEDGER_PROOF_MISMATCH).
   */
  agree<T extends string | number | bigint | boolean>(what: string, called: T, proven: T | undefined): T {
    if (proven === undefined || called === proven) return called;
    const block = this.facts.block;
    this.log?.(
      `ledger proofs: the RPC endpoint ${this.endpoint} answered ${String(called)} for ${what}, but the ledger's state at block ${block.number} (${block.hash}) proves ${String(proven)}: a lying endpoint; nothing is decided on its answers`,
    );
    throw new LedgerProofRefused(
      "LEDGER_PROOF_MISMATCH",
      `the RPC endpoint ${this.endpoint} answered ${String(called)} for ${what}; the ledger's state proves ${String(proven)}`,
      {
        details: { what, called: String(called), proven: String(proven), block: block.number, blockHash: block.hash },
      },
    );
  }
}

/**
 * The device's proofs of the ledger, as its setting says: reads the facts `read` is asked for with
 * eth_getProof at the newest block of the device's provider (a quorum provider's agreed block) and
 * returns them, or undefined when proofs are off.
 */
export class LedgerProofs {
  /** Whether the endpoint has shown it answers eth_getProof (undefined: not asked yet). */
  private supported: boolean | undefined;
  private readonly endpoint: string;

  constructor(
    readonly setting: LedgerProofsSetting,
    private readonly deps: {
      provider: unknown; // an ethers provider: one with send() can be asked for proofs
      registry: { getAddress(): Promise<string> };
      fleet: { getAddress(): Promise<string> };
      log?: (line: string) => void;
      /**
       * Whether this endpoint answered eth_getProof in an earlier run, and telling it that it did:
       * an endpoint that denies proofs on the first ask after each restart must not switch "auto"
       * off (issue 16 review). Without them, only this run's answers count.
       */
      answeredBefore?: (endpoint: string) => boolean;
      answered?: (endpoint: string) => Promise<void>;
    },
  ) {
    this.endpoint = endpointOf(deps.provider);
    if (deps.answeredBefore?.(this.endpoint)) this.supported = true;
  }

  /** Whether the decisions are on proven facts now (auto: once the endpoint has answered a proof). */
  get active(): boolean {
    return this.setting === "on" || (this.setting === "auto" && this.supported === true);
  }

  async read(q: ProvenQuery): Promise<ProvenView | undefined> {
    if (this.setting === "off" || (this.setting === "auto" && this.supported === false)) return undefined;
    const rpc = this.deps.provider as Partial<RpcSender>;
    try {
      if (typeof rpc.send !== "function") throw Object.assign(new Error("the provider cannot send eth_getProof"), { code: "UNSUPPORTED_OPERATION" });
      // A quorum provider (agent/chain/endpointQuorum) names the block its endpoints agreed on: the
      // proofs are read at it and its header must have that hash, not just any hash it shows.
      const quorum = this.deps.provider as { agreedHead?: () => Promise<{ number: number; hash: string }>; refreshHead?: () => void };
      const at = { registry: await this.deps.registry.getAddress(), fleet: await this.deps.fleet.getAddress() };
      const readAtAgreed = async () => {
        const agreed = typeof quorum.agreedHead === "function" ? await quorum.agreedHead() : undefined;
        return readProvenFacts(rpc as RpcSender, at, q, agreed ? { block: agreed.number, agreedHash: agreed.hash } : {});
      };
      // The chain reorganised since the head was agreed (the same number, another hash): agree
      // again once before taking it for a bad header.
      const facts = await readAtAgreed().catch((err: unknown) => {
        if (!(err instanceof StateProofError && err.code === "HEADER_INVALID" && typeof quorum.refreshHead === "function")) throw err;
        quorum.refreshHead();
        return readAtAgreed();
      });
      if (this.supported !== true) await this.deps.answered?.(this.endpoint);
      this.supported = true;
      return new ProvenView(facts, this.endpoint, this.deps.log);
    } catch (err) {
      if (err instanceof StateProofError) {
        this.deps.log?.(`ledger proofs: the RPC endpoint ${this.endpoint} sent a proof that does not verify (${err.code}): ${err.message}`);
        throw new LedgerProofRefused("LEDGER_PROOF_INVALID", `the RPC endpoint ${this.endpoint} sent a proof that does not verify: ${err.message}`, {
          cause: err,
        });
      }
      if (!isProofUnsupported(err)) throw err; // an outage: the caller's LEDGER_UNAVAILABLE
      if (this.setting === "on" || this.supported === true) {
        const why =
          this.setting === "on"
            ? 'device.json says ledgerProofs "on"'
            : "it answered eth_getProof before, in this run or an earlier one (an endpoint does not lose it: taken as switching proofs off)";
        this.deps.log?.(`ledger proofs: the RPC endpoint ${this.endpoint} does not answer eth_getProof and ${why}: nothing is decided until it does`);
        throw new LedgerProofRefused(
          "LEDGER_PROOF_UNAVAILABLE",
          `the RPC endpoint ${this.endpoint} does not answer eth_getProof, which this device requires: use an endpoint that does (geth, reth, anvil, Hardhat's node) or set ledgerProofs "off" in device.json`,
          { cause: err },
        );
      }
      this.supported = false;
      this.deps.log?.(
        `ledger proofs off: the RPC endpoint ${this.endpoint} does not answer eth_getProof (ledgerProofs "auto"); the device decides on its eth_call answers. Set ledgerProofs "on" in device.json to require proofs, or "off"`,
      );
      return undefined;
    }
  }
}

/** The endpoint as log lines name it (agent/chain/rpcEndpoint.ts: no API key shown). */
function endpointOf(provider: unknown): string {
  const connection = (provider as { _getConnection?: () => { url?: string } })._getConnection?.();
  return connection?.url && /^https?:|^wss?:/.test(connection.url) ? shownEndpoint(connection.url) : "(the device's provider)";
}
