import {
  FetchRequest,
  JsonRpcProvider,
  toQuantity,
  type JsonRpcApiProviderOptions,
  type JsonRpcError,
  type JsonRpcPayload,
  type JsonRpcResult,
  type Networkish,
} from "ethers";
import { LedgerUnavailable } from "./ledgerCall";
import { shownEndpoint } from "./rpcEndpoint";

/**
 * The ledger's endpoints do not agree (or too few answer): nothing read through them now may be
 * trusted. An outage of the ledger to its callers (LedgerUnavailable: blocked, tried again), with
 * its own code so that an operator tells a lying or split set of endpoints from a dead one.
 */
export class LedgerNoQuorum extends LedgerUnavailable {}

/** The block a quorum of endpoints agreed is the newest: what every "latest" read is pinned to. */
export interface AgreedHead {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: number; // unix s
  stateRoot: string;
}

export interface QuorumOptions {
  /** How many endpoints must give the same answer (default a majority, floor(N/2)+1; more than half of N). */
  quorum?: number;
  /** How long an agreed head is reused before the endpoints are asked again (ms, default 5 s): one update check agrees once. */
  headTtlMs?: number;
  /** How long each endpoint has to give its newest header (ms, default 5 s); one that does not answer just does not count. */
  headTimeoutMs?: number;
  /** How many blocks below the quorum's newest height to look for agreement (a fork at the tip, default 4). */
  walkBack?: number;
  /** How long any other request may take at one endpoint (ms, default 60 s). */
  requestTimeoutMs?: number;
  now?: () => number;
}

/** Where each block-tagged read carries its block: "latest" there is pinned to the agreed head. */
export const TAG_AT: Readonly<Record<string, number>> = {
  eth_call: 1,
  eth_getBalance: 1,
  eth_getCode: 1,
  eth_getTransactionCount: 1,
  eth_getStorageAt: 2,
  eth_getProof: 2,
  eth_getBlockByNumber: 0,
  eth_getBlockTransactionCountByNumber: 0,
  eth_createAccessList: 1,
};

/**
 * Answers that are no fact of the ledger (fees, gas estimates, node facts) or that differ between
 * honest nodes anyway: the first endpoint that answers gives them. A lie here can only make a
 * transaction fail or cost more, never make an agent act on a false ledger.
 */
const FIRST_ANSWER: ReadonlySet<string> = new Set([
  "eth_chainId",
  "net_version",
  "web3_clientVersion",
  "eth_syncing",
  "eth_accounts",
  "eth_gasPrice",
  "eth_maxPriorityFeePerGas",
  "eth_blobBaseFee",
  "eth_feeHistory",
  "eth_estimateGas",
]);

/** Header and log fields some clients add or leave out: not facts of the chain, left out of comparisons. */
const CLIENT_FIELDS: ReadonlySet<string> = new Set(["totalDifficulty", "author", "sealFields"]);

/** One endpoint's answer to one request: ethers types `_send`'s answers as results, but errors come back in them too. */
type RpcAnswer = JsonRpcResult | JsonRpcError;

interface Agreed {
  head: AgreedHead;
  header: Record<string, unknown>; // as the agreeing endpoints gave it (non-hydrated)
  members: number[]; // the endpoints that agreed on it, in configured order
}

/**
 * An ethers provider over several JSON-RPC endpoints of one chain that must agree (the freeze
 * attack of TUF: one lying endpoint could otherwise hide a revocation or a new release for good).
 *
 * - The agreed head: every endpoint is asked its newest header at once (each with a short
 *   timeout); the q-th highest height is tried first, then a few blocks below it, and the head is
 *   the newest block that q endpoints give with the same header. It is reused for `headTtlMs`.
 * - Every read naming "latest" (eth_call, eth_getLogs, eth_getBlockByNumber, eth_getStorageAt,
 *   eth_getProof...) is pinned to that block; eth_blockNumber answers its number. Reads are asked
 *   of q endpoints (those that agreed on the head first), and of the others only when those do not
 *   give q identical answers (canonical JSON; a revert by its data): a read costs q requests when
 *   the endpoints agree. Too few identical answers fail with LEDGER_NO_QUORUM.
 * - eth_sendRawTransaction goes to every endpoint; fees and gas estimates come from the first
 *   that answers.
 * - With one endpoint it is a plain JsonRpcProvider: no head agreement, no extra request.
 *
 * Stateful filters (eth_newFilter) cannot agree across nodes: events are polled with eth_getLogs.
 */
export class QuorumProvider extends JsonRpcProvider {
  readonly quorum: number;
  private readonly requests: FetchRequest[];
  private readonly counts: number[];
  private readonly q: Required<Omit<QuorumOptions, "quorum">>;
  private cached: { at: number; agreed: Agreed } | undefined;
  private agreeing: Promise<Agreed> | undefined;

  constructor(endpoints: (string | FetchRequest)[], network: Networkish, o: QuorumOptions & { provider?: JsonRpcApiProviderOptions } = {}) {
    if (endpoints.length === 0) throw new RangeError("a QuorumProvider needs at least one endpoint");
    const requests = endpoints.map((e) => (typeof e === "string" ? new FetchRequest(e) : e.clone()));
    // One request per payload with several endpoints, so that a read without a quorum fails alone
    // (a batch would fail together); events by eth_getLogs polling, which endpoints can agree on.
    const several = requests.length > 1 ? { batchMaxCount: 1, polling: true } : {};
    super(requests[0], network, { ...o.provider, ...several });
    this.requests = requests;
    this.counts = requests.map(() => 0);
    this.quorum = o.quorum ?? Math.floor(requests.length / 2) + 1;
    if (!Number.isSafeInteger(this.quorum) || this.quorum <= requests.length / 2 || this.quorum > requests.length) {
      throw new RangeError(`a quorum of ${this.quorum} of ${requests.length} endpoints must be a whole number above half of them and at most all of them`);
    }
    this.q = {
      headTtlMs: o.headTtlMs ?? 5000,
      headTimeoutMs: o.headTimeoutMs ?? 5000,
      walkBack: o.walkBack ?? 4,
      requestTimeoutMs: o.requestTimeoutMs ?? requests[0].timeout,
      now: o.now ?? Date.now,
    };
  }

  /** How many endpoints this provider reads through. */
  get endpointCount(): number {
    return this.requests.length;
  }

  /** The JSON-RPC requests sent to each endpoint so far (a batch counts each of its requests): the fleet's cost. */
  get requestCounts(): number[] {
    return [...this.counts];
  }

  /** The endpoints as messages show them (origin only: a path may hold an API key). */
  get shownEndpoints(): string[] {
    return this.requests.map((r) => shownEndpoint(r.url));
  }

  /**
   * The block the endpoints agree is the newest (with one endpoint: its newest), reused for a
   * short while. Reads naming "latest" are answered at this block, so a caller checking a storage
   * proof against `stateRoot` checks what the other reads saw.
   */
  async agreedHead(): Promise<AgreedHead> {
    return { ...(await this.agreed()).head };
  }

  /** Forgets the agreed head: the next read agrees on a new one. */
  refreshHead(): void {
    this.cached = undefined;
  }

  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    if (this.requests.length === 1) {
      this.counts[0] += Array.isArray(payload) ? payload.length : 1;
      return super._send(payload); // a plain provider: not one request more
    }
    return (await Promise.all((Array.isArray(payload) ? payload : [payload]).map((p) => this.one(p)))) as JsonRpcResult[];
  }

  // ---------------------------------------------------------------- one request

  private async one(p: JsonRpcPayload): Promise<RpcAnswer> {
    const params = Array.isArray(p.params) ? [...p.params] : [];
    if (p.method === "eth_blockNumber") return { id: p.id, result: toQuantity((await this.agreed()).head.number) };
    if (p.method === "eth_sendRawTransaction") return this.broadcast(p);
    if (FIRST_ANSWER.has(p.method) || (p.method === "eth_getTransactionCount" && params[1] === "pending")) return this.firstAnswer(p);

    let agreed: Agreed | undefined;
    const pin = async () => toQuantity((agreed ??= await this.agreed()).head.number);
    const at = TAG_AT[p.method];
    if (at !== undefined && (params[at] === undefined || params[at] === "latest")) params[at] = await pin();
    if (p.method === "eth_getLogs" && isObject(params[0]) && params[0].blockHash === undefined) {
      const filter = { ...params[0] };
      if (filter.toBlock === undefined || filter.toBlock === "latest") filter.toBlock = await pin();
      if (filter.fromBlock === undefined || filter.fromBlock === "latest") filter.fromBlock = await pin();
      params[0] = filter;
    }
    // The agreed header itself: q endpoints gave it already.
    const head = agreed ?? this.fresh();
    if (p.method === "eth_getBlockByNumber" && params[1] === false && head && params[0] === toQuantity(head.head.number)) {
      return { id: p.id, result: head.header };
    }
    return this.agree({ ...p, params }, head?.members);
  }

  /**
   * Asks q endpoints (those that agreed on the head first), then the others if those do not give q
   * identical answers; answers as soon as q agree.
   */
  private async agree(p: JsonRpcPayload, preferred: number[] = []): Promise<RpcAnswer> {
    const order = [...preferred, ...this.indices().filter((i) => !preferred.includes(i))];
    const groups = new Map<string, { answer: RpcAnswer; members: number[] }>();
    const seen: (string | undefined)[] = this.requests.map(() => undefined);
    const ask = (indices: number[]) =>
      new Promise<RpcAnswer | undefined>((resolve) => {
        let left = indices.length;
        if (left === 0) resolve(undefined);
        for (const i of indices) {
          this.post(i, p, this.q.requestTimeoutMs)
            .then(
              (answer) => {
                const key = answerKey(answer);
                const group = groups.get(key) ?? { answer, members: [] };
                group.members.push(i);
                groups.set(key, group);
                seen[i] = key;
                if (group.members.length >= this.quorum) resolve(group.answer);
              },
              (err: unknown) => void (seen[i] = `failed (${failure(err)})`),
            )
            .finally(() => {
              if (--left === 0) resolve(undefined);
            });
        }
      });
    const answer = (await ask(order.slice(0, this.quorum))) ?? (await ask(order.slice(this.quorum)));
    if (answer) return { ...answer, id: p.id };
    throw this.noQuorum(p.method, groups, seen);
  }

  /** The first endpoint's answer that comes (an error of the node included); the next one when it does not answer. */
  private async firstAnswer(p: JsonRpcPayload): Promise<RpcAnswer> {
    const seen: (string | undefined)[] = this.requests.map(() => undefined);
    for (const i of this.indices()) {
      try {
        return { ...(await this.post(i, p, this.q.requestTimeoutMs)), id: p.id };
      } catch (err) {
        seen[i] = `failed (${failure(err)})`;
      }
    }
    throw this.noQuorum(p.method, new Map(), seen);
  }

  /** A signed transaction to every endpoint: accepted if any takes it (the others may already know it). */
  private async broadcast(p: JsonRpcPayload): Promise<RpcAnswer> {
    const answers = await Promise.allSettled(this.indices().map((i) => this.post(i, p, this.q.requestTimeoutMs)));
    const given = answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
    const taken = given.find((a) => "result" in a) ?? given[0];
    if (taken) return { ...taken, id: p.id };
    const seen = answers.map((a) => (a.status === "rejected" ? `failed (${failure(a.reason)})` : undefined));
    throw this.noQuorum("eth_sendRawTransaction", new Map(), seen);
  }

  // ---------------------------------------------------------------- the agreed head

  private fresh(): Agreed | undefined {
    return this.cached && this.q.now() - this.cached.at < this.q.headTtlMs ? this.cached.agreed : undefined;
  }

  private agreed(): Promise<Agreed> {
    const fresh = this.fresh();
    if (fresh) return Promise.resolve(fresh);
    // One agreement at a time: the reads of one check that meet here share it.
    this.agreeing ??= this.findHead()
      .then((agreed) => {
        this.cached = { at: this.q.now(), agreed };
        return agreed;
      })
      .finally(() => (this.agreeing = undefined));
    return this.agreeing;
  }

  private async findHead(): Promise<Agreed> {
    const seen: (string | undefined)[] = this.requests.map(() => undefined);
    const tops = await Promise.all(this.indices().map((i) => this.header(i, "latest", seen)));
    const answered = tops.flatMap((h, i) => (h ? [{ i, top: Number(h.number), h }] : []));
    const heights = answered.map((a) => a.top).sort((a, b) => b - a);
    if (answered.length < this.quorum) throw this.noQuorum("the newest block", new Map(), seen);
    // The q-th highest: at least q endpoints claim to have it (one that runs ahead, or lies ahead, does not decide).
    const start = heights[this.quorum - 1];
    let groups = new Map<string, { answer: RpcAnswer; members: number[] }>();
    for (let n = start; n >= Math.max(0, start - this.q.walkBack); n--) {
      const at = await Promise.all(answered.filter((a) => a.top >= n).map(async (a) => ({ i: a.i, h: a.top === n ? a.h : await this.header(a.i, n, seen) })));
      groups = new Map();
      for (const { i, h } of at) {
        if (!h) continue;
        const key = canonicalJson(h);
        const group = groups.get(key) ?? { answer: { id: 0, result: h }, members: [] };
        group.members.push(i);
        groups.set(key, group);
        seen[i] = key;
      }
      const best = [...groups.values()].find((g) => g.members.length >= this.quorum);
      if (best) {
        const h = (best.answer as JsonRpcResult).result as Record<string, string>;
        const members = best.members.sort((a, b) => a - b);
        return {
          head: { number: Number(h.number), hash: h.hash, parentHash: h.parentHash, timestamp: Number(h.timestamp), stateRoot: h.stateRoot },
          header: h,
          members,
        };
      }
    }
    throw this.noQuorum(`any block from ${Math.max(0, start - this.q.walkBack)} to ${start}`, groups, seen);
  }

  /** An endpoint's header at `tag` (non-hydrated), or undefined when it does not give one in time. */
  private async header(i: number, tag: number | "latest", seen: (string | undefined)[]): Promise<Record<string, unknown> | undefined> {
    const payload: JsonRpcPayload = { id: 1, jsonrpc: "2.0", method: "eth_getBlockByNumber", params: [tag === "latest" ? tag : toQuantity(tag), false] };
    try {
      const answer = await this.post(i, payload, this.q.headTimeoutMs);
      if ("error" in answer) {
        seen[i] = `failed (${answer.error.message ?? answer.error.code})`;
        return undefined;
      }
      const h = (answer as JsonRpcResult).result as Record<string, unknown> | null;
      if (!isObject(h) || typeof h.number !== "string" || typeof h.hash !== "string" || typeof h.timestamp !== "string") {
        seen[i] = `failed (no header of block ${tag})`;
        return undefined;
      }
      return h;
    } catch (err) {
      seen[i] = `failed (${failure(err)})`;
      return undefined;
    }
  }

  // ---------------------------------------------------------------- transport

  /** One request to one endpoint, as JsonRpcProvider sends it; a transport failure or a non-2xx answer throws. */
  private async post(i: number, payload: JsonRpcPayload, timeoutMs: number): Promise<RpcAnswer> {
    this.counts[i] += 1;
    const request = this.requests[i].clone();
    request.timeout = timeoutMs;
    request.body = JSON.stringify(payload);
    request.setHeader("content-type", "application/json");
    const response = await request.send();
    response.assertOk();
    const body = response.bodyJson as unknown;
    const answer: unknown = Array.isArray(body) ? body[0] : body;
    if (!isObject(answer) || (!("result" in answer) && !("error" in answer))) throw new Error("not a JSON-RPC answer");
    return { ...(answer as RpcAnswer), id: payload.id };
  }

  private indices(): number[] {
    return this.requests.map((_, i) => i);
  }

  /** The error for `what` with each endpoint's part: which answer group (A, B...) or why it failed. */
  private noQuorum(what: string, groups: Map<string, { members: number[] }>, seen: (string | undefined)[]): LedgerUnavailable {
    // Nobody answered at all: the ledger is down (as with one plain endpoint), not split.
    if (groups.size === 0 && seen.every((answer) => answer === undefined || answer.startsWith("failed"))) {
      return new LedgerUnavailable(
        "LEDGER_UNAVAILABLE",
        `none of the ledger's ${this.requests.length} endpoint(s) answered (${this.requests.map((r, i) => `#${i + 1} ${shownEndpoint(r.url)}: ${seen[i] ?? "not asked"}`).join("; ")}); asked again later`,
      );
    }
    // Lettered in the endpoints' order (the first endpoint's answer is A), not in the order they arrived.
    const ordered = [...groups.entries()].sort(([, a], [, b]) => Math.min(...a.members) - Math.min(...b.members));
    const labels = new Map(ordered.map(([key], n) => [key, `answer ${String.fromCharCode(65 + (n % 26))}`]));
    const best = Math.max(0, ...[...groups.values()].map((g) => g.members.length));
    const endpoints = this.requests.map((r, i) => ({
      endpoint: `#${i + 1} ${shownEndpoint(r.url)}`,
      answer: seen[i] === undefined ? "not asked" : (labels.get(seen[i]!) ?? seen[i]!),
    }));
    return new LedgerNoQuorum(
      "LEDGER_NO_QUORUM",
      `the ledger's endpoints do not agree on ${what}: at most ${best} of ${this.requests.length} gave the same answer, ${this.quorum} needed ` +
        `(${endpoints.map((e) => `${e.endpoint}: ${e.answer}`).join("; ")}); nothing is decided on it, and it is asked again later`,
      { details: { what, agreeing: best, quorum: this.quorum, endpoints } },
    );
  }
}

/** What two endpoints must give alike for their answers to count as one: the result, or a revert by its data. */
function answerKey(answer: RpcAnswer): string {
  if ("result" in answer) return canonicalJson(answer.result);
  const { code, message, data } = answer.error;
  // Nodes word a revert differently; its data is the contract's.
  return typeof data === "string" && /^0x[0-9a-f]*$/i.test(data) ? `revert ${data.toLowerCase()}` : `error ${code} ${message}`;
}

/** JSON with sorted keys, hex in lower case and the client-specific fields left out: equal for equal facts. */
export function canonicalJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (typeof v === "string") return /^0x[0-9a-fA-F]*$/.test(v) ? v.toLowerCase() : v;
    if (Array.isArray(v)) return v.map(norm);
    if (isObject(v))
      return Object.fromEntries(
        Object.keys(v)
          .filter((k) => !CLIENT_FIELDS.has(k) && v[k] !== undefined)
          .sort()
          .map((k) => [k, norm(v[k])]),
      );
    return v;
  };
  return JSON.stringify(norm(value)) ?? "undefined";
}

function failure(err: unknown): string {
  const e = err as { code?: string; shortMessage?: string; message?: string };
  return e.code ?? e.shortMessage ?? e.message ?? String(err);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
