import { LocalListener, readAll } from "../e2e/harness/localListener";

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
