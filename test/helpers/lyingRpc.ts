import { LocalListener, readAll } from "../e2e/harness/localListener";
import { AbiCoder, Result } from "ethers";
import { UpdateCheckLens__factory } from "../../agent/chain/contracts";

/** One JSON-RPC request as the endpoint received it. */
export interface RpcRequest {
  jsonrpc: "2.0";
  id: number | string | null;
  method: string;
  params: unknown[];
}

/**
 * What a lying endpoint does to one request. `answer` replaces the upstream's result (the upstream
 * is not asked); `rewrite` changes the upstream's result; `params` changes what is asked upstream
 * (e.g. every "latest" read pinned to an old block: a frozen view). Return undefined to relay.
 */
export interface RpcLie {
  params?(req: RpcRequest): unknown[] | undefined;
  answer?(req: RpcRequest): { result: unknown } | { error: { code: number; message: string } } | undefined;
  rewrite?(req: RpcRequest, result: unknown): unknown;
  /** Runs after the upstream answered and before the answer is sent on: the chain moving meanwhile. */
  after?(req: RpcRequest): Promise<void>;
}

/**
 * A JSON-RPC endpoint on 127.0.0.1 that relays to a real node and lies as told (`lie`, changeable
 * at any time): a malicious or compromised RPC provider between an agent and the chain. Batches
 * are relayed one request at a time. Every request is counted by method.
 */
export class LyingRpc {
  lie: RpcLie = {};
  readonly calls = new Map<string, number>();
  private constructor(
    private readonly listener: LocalListener,
    private readonly upstream: string,
  ) {}

  static async start(upstream: string, lie: RpcLie = {}): Promise<LyingRpc> {
    const at: { rpc?: LyingRpc } = {};
    const listener = await LocalListener.start(async (req, res) => {
      const body = JSON.parse((await readAll(req)).toString("utf8")) as RpcRequest | RpcRequest[];
      const answer = Array.isArray(body) ? await Promise.all(body.map((r) => at.rpc!.one(r))) : await at.rpc!.one(body);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
    at.rpc = new LyingRpc(listener, upstream);
    at.rpc.lie = lie;
    return at.rpc;
  }

  get url(): string {
    return this.listener.url;
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  private async one(req: RpcRequest): Promise<unknown> {
    this.calls.set(req.method, (this.calls.get(req.method) ?? 0) + 1);
    const lie = this.lie;
    const given = lie.answer?.(req);
    if (given) return { jsonrpc: "2.0", id: req.id, ...given };
    const params = lie.params?.(req) ?? req.params;
    const res = await fetch(this.upstream, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...req, params }),
    });
    const answer = (await res.json()) as { result?: unknown; error?: unknown };
    await lie.after?.(req);
    if (answer.error !== undefined || !lie.rewrite) return { ...answer, id: req.id };
    return { jsonrpc: "2.0", id: req.id, result: lie.rewrite(req, answer.result) };
  }
}

/** A query to the update-check lens (contracts/lens/UpdateCheckLens.sol) and its answer, as plain objects. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LensObject = Record<string, any>;

/**
 * A `rewrite` lie on the update-check lens's answers (agent/chain/ledgerLens: one eth_call, of the
 * lens's creation code with no `to` or of a deployed lens's answer): `edit` changes the decoded facts of the queries it picks.
 * Other answers pass unchanged.
 */
export function rewriteLensFacts(edit: (query: LensObject, facts: LensObject) => void): (req: RpcRequest, result: unknown) => unknown {
  const lens = UpdateCheckLens__factory.createInterface();
  const code = UpdateCheckLens__factory.bytecode.toLowerCase();
  return (req, result) => {
    if (req.method !== "eth_call" || typeof result !== "string") return result;
    const tx = req.params[0] as { to?: string | null; data?: string; input?: string };
    const data = String(tx.data ?? tx.input ?? "").toLowerCase();
    // Deployless (the creation code and the query) or a deployed lens's answer(query).
    const answerCall = lens.getFunction("answer")!.selector;
    let queries: Result;
    if (!tx.to && data.startsWith(code)) [queries] = AbiCoder.defaultAbiCoder().decode(lens.deploy.inputs, "0x" + data.slice(code.length));
    else if (tx.to && data.startsWith(answerCall)) [queries] = lens.decodeFunctionData("answer", data);
    else return result;
    if (queries.length === 0) return result; // the agent's check of a deployed lens's code: no facts in it
    const [facts] = lens.decodeFunctionResult("answer", result);
    const edited = plain(facts) as LensObject[];
    (plain(queries) as LensObject[]).forEach((q, i) => edit(q, edited[i]));
    return lens.encodeFunctionResult("answer", [edited]);
  };
}

/** A decoded ABI value as plain objects and arrays (Result.toObject makes arrays of values objects). */
function plain(value: unknown): unknown {
  if (!(value instanceof Result)) return value;
  const items = [...value].map(plain);
  let named: Record<string, unknown> | undefined;
  try {
    named = value.toObject();
  } catch {
    return items; // an array: its values are unnamed
  }
  const keys = Object.keys(named);
  return keys.length > 0 && keys.length === items.length && keys.every((k) => k !== "" && k !== "_")
    ? Object.fromEntries(keys.map((k, i) => [k, items[i]]))
    : items;
}
