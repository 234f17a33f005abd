import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { JsonRpcProvider, Network, type Interface } from "ethers";
import { startAnvil } from "../../../scripts/lib/anvilChain";
import type { LocalChain } from "../../../scripts/lib/localChain";
import { freePort } from "../../../scripts/lib/ports";
import { registryOnNode, NODE_COMPONENT } from "../../../scripts/lib/registryOnNode";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../../agent/chain/contracts";
import { shownEndpoint } from "../../../agent/chain/rpcEndpoint";
import type { LedgerRelease } from "../../../agent/chain/releaseEvents";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import type { LedgerProofsSetting } from "../../../agent/chain/ledgerProofs";
import { LyingRpc, rewriteLensFacts, type RpcRequest } from "../../helpers/lyingRpc";
import { LocalListener, readAll } from "../../e2e/harness/localListener";

/**
 * Issue 16 item 3 on anvil (a real EVM node that answers eth_getProof), with the project's
 * registries deployed: a device behind one endpoint that lies about a release's status or its own
 * standing in its eth_call answers decides nothing with proofs on (LEDGER_PROOF_MISMATCH, blocked,
 * the endpoint named), and is fooled with them off; an honest endpoint passes.
 */
describe("agent/consumer: a device with ledger proofs refuses a lying RPC endpoint (issue 16, anvil)", function () {
  this.timeout(120_000);
  let chain: LocalChain;
  let node: Awaited<ReturnType<typeof registryOnNode>>;
  let lying: LyingRpc;
  let noProofs: LocalListener;
  let dir: string;
  let revoked: LedgerRelease;
  let active: LedgerRelease;
  let device: Awaited<ReturnType<(typeof node)["enrol"]>>;
  const opened: Array<{ provider: JsonRpcProvider }> = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "ota-proofs-"));
    chain = await startAnvil({ port: await freePort() });
    node = await registryOnNode(chain.url);
    revoked = await node.publish("1.0.0");
    active = await node.publish("1.1.0");
    await node.revoke(revoked.id);
    device = await node.enrol("device behind a lying endpoint");
    lying = await LyingRpc.start(chain.url);
    // An endpoint without eth_getProof (as some providers are): geth's answer for a method it lacks.
    noProofs = await LocalListener.start(async (req, res) => {
      const body = JSON.parse((await readAll(req)).toString("utf8")) as RpcRequest;
      const answer =
        body.method === "eth_getProof"
          ? { jsonrpc: "2.0", id: body.id, error: { code: -32601, message: "the method eth_getProof does not exist/is not available" } }
          : await (await fetch(chain.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  after(async () => {
    for (const o of opened) o.provider.destroy();
    node?.close();
    await lying?.close();
    await noProofs?.close();
    await chain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => (lying.lie = {}));

  let n = 0;
  /** A device agent whose only endpoint is `url`; it records the phases it reaches and its log lines. */
  async function agentAt(url: string, ledgerProofs: LedgerProofsSetting, wrap: (p: JsonRpcProvider) => JsonRpcProvider = (p) => p, dataDir = `device-${++n}`) {
    const provider = wrap(new JsonRpcProvider(url, Network.from(31337), { staticNetwork: true, batchMaxCount: 1 }));
    opened.push({ provider });
    const phases: string[] = [];
    const log: string[] = [];
    const agent = await DeviceAgent.open({
      dataDir: path.join(dir, dataDir),
      device,
      serverUrl: `http://127.0.0.1:${await freePort()}`, // nothing listens: an update that passes the ledger is blocked at delivery
      chain: {
        provider,
        registry: UpdateRegistry__factory.connect(await node.registry.getAddress(), provider),
        fleet: FleetRegistry__factory.connect(await node.fleet.getAddress(), provider),
        domain: node.domain,
        fromBlock: 0,
      },
      components: [NODE_COMPONENT],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async () => true,
      ledgerProofs,
      download: { startJitterMs: 0, timeoutMs: 1000, attempts: 1, backoffMs: 10 },
      onPhase: (phase) => void phases.push(phase),
      log: (l) => log.push(l),
    });
    return { agent, phases, log };
  }

  /**
   * Rewrites the eth_call answers of `fn` about `arg` (a release id or a device id; any for
   * checkInstallable) to `value`, as the registries would encode it.
   */
  function forge(fn: "releaseState" | "releaseStatus" | "checkInstallable" | "deviceStanding", arg: string, value: number) {
    const registry: Interface = node.registry.interface;
    const fleet: Interface = node.fleet.interface;
    // The same lie in the check's one read (agent/chain/ledgerLens), which asks all of these at once.
    const inLens = rewriteLensFacts((query, facts) => {
      if (fn === "deviceStanding") {
        if (String(query.device.id).toLowerCase() === arg.toLowerCase()) facts.standing = value;
      } else if (fn === "checkInstallable") facts.verdict = value;
      else {
        if (String(query.releaseId).toLowerCase() === arg.toLowerCase()) facts.state.status = value;
        (query.running as string[]).forEach((id, i) => id.toLowerCase() === arg.toLowerCase() && (facts.runningStatus[i] = value));
      }
    });
    return (req: RpcRequest, result: unknown): unknown => {
      if (req.method !== "eth_call") return result;
      if (!(req.params[0] as { to?: string }).to) return inLens(req, result);
      const data = String((req.params[0] as { data?: string; input?: string }).data ?? (req.params[0] as { input?: string }).input ?? "");
      const iface = fn === "deviceStanding" ? fleet : registry;
      const call = iface.parseTransaction({ data });
      if (call?.name !== fn) return result;
      const about = fn === "deviceStanding" ? (call.args[0] as { id: string }).id : fn === "checkInstallable" ? arg : (call.args[0] as string);
      if (about.toLowerCase() !== arg.toLowerCase()) return result;
      if (fn !== "releaseState") return iface.encodeFunctionResult(fn, [value]);
      const [state] = iface.decodeFunctionResult(fn, result as string);
      return iface.encodeFunctionResult(fn, [{ ...state.toObject(), hardware: [...state.hardware], status: value }]);
    };
  }
  const forgeRevokedAsActive = () => {
    const state = forge("releaseState", revoked.id, 1);
    const status = forge("releaseStatus", revoked.id, 1);
    const installable = forge("checkInstallable", "", 0); // the registry's own verdict too: Installable
    lying.lie = { rewrite: (req, result) => installable(req, status(req, state(req, result))) };
  };

  it("CAP-11.3-c REQ-10d-ii: an honest endpoint passes: the revoked release is refused, the active one passes every ledger check", async () => {
    const { agent, phases, log } = await agentAt(lying.url, "on");
    expect(await agent.considerRelease(revoked.id, "test")).to.include({ outcome: "rejected", code: "RELEASE_REVOKED" });
    const taken = await agent.considerRelease(active.id, "test");
    expect(phases).to.include("checked");
    expect(taken.outcome).to.equal("blocked"); // no firmware server here: the delivery is what stops it
    expect(taken.code).to.not.match(/^LEDGER_PROOF/);
    expect(log.join("\n")).to.not.match(/ledger proofs/);
    expect(lying.calls.get("eth_getProof") ?? 0).to.be.greaterThan(0);
  });

  it("CAP-11.3-c: with proofs on, a forged status (revoked answered as active) is refused from a single endpoint: blocked LEDGER_PROOF_MISMATCH, the endpoint named", async () => {
    forgeRevokedAsActive();
    const { agent, phases, log } = await agentAt(lying.url, "on");
    expect(await agent.considerRelease(revoked.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_MISMATCH" });
    expect(phases).to.not.include("checked");
    const line = log.find((l) => l.includes("lying endpoint"));
    expect(line).to.include(shownEndpoint(lying.url)).and.to.include(`the status of release ${revoked.id}`).and.to.include("proves revoked");
  });

  it("with proofs off the same lie works: the device takes the revoked release for active (what the proofs are for)", async () => {
    forgeRevokedAsActive();
    const { agent, phases } = await agentAt(lying.url, "off");
    const taken = await agent.considerRelease(revoked.id, "test");
    expect(phases).to.include("checked");
    expect(taken.outcome).to.equal("blocked"); // only the missing server stops it
    expect(taken.code).to.not.equal("RELEASE_REVOKED");
  });

  it('"auto": proofs where the endpoint has eth_getProof (the lie refused); off with one log line where it has not; "on" there refuses to decide', async () => {
    forgeRevokedAsActive();
    const behindLiar = await agentAt(lying.url, "auto");
    expect(await behindLiar.agent.considerRelease(revoked.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_MISMATCH" });

    const without = await agentAt(noProofs.url, "auto");
    expect(await without.agent.considerRelease(revoked.id, "test")).to.include({ outcome: "rejected", code: "RELEASE_REVOKED" });
    expect(await without.agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked" });
    expect(without.phases).to.include("checked");
    expect(without.log.filter((l) => l.startsWith("ledger proofs off"))).to.have.length(1);
    expect(without.log.find((l) => l.startsWith("ledger proofs off"))).to.include(shownEndpoint(noProofs.url));

    const required = await agentAt(noProofs.url, "on");
    expect(await required.agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_UNAVAILABLE" });
    expect(required.phases).to.not.include("checked");
  });

  it("an honest endpoint on a chain that moves between the proofs and the calls is not taken for a liar: the one read is asked at the proofs' block", async () => {
    const moving = await node.publish("1.2.0");
    let moved = false;
    // Right after the proofs are read, the release is revoked in a new block: "latest" moves on.
    lying.lie = {
      after: async (req) => {
        if (req.method !== "eth_getProof" || moved) return;
        moved = true;
        await node.revoke(moving.id);
      },
    };
    const { agent, phases } = await agentAt(lying.url, "on");
    const outcome = await agent.considerRelease(moving.id, "test");
    expect(moved).to.equal(true);
    // Not LEDGER_PROOF_MISMATCH: the proven facts and the one read agree at the proofs' block,
    // where the release was still active (the re-check after a download would see the revocation;
    // there is no server here, so the delivery is what stops it).
    expect(outcome.outcome).to.equal("blocked");
    expect(outcome.code).to.not.match(/^LEDGER_PROOF/);
    expect(phases).to.include("checked");
  });

  it('"auto" remembers across a restart that its endpoint answered proofs: the same endpoint denying eth_getProof after it is LEDGER_PROOF_UNAVAILABLE, not proofs off', async () => {
    lying.lie = {};
    const first = await agentAt(lying.url, "auto", undefined, "remembers-proofs");
    expect((await first.agent.considerRelease(active.id, "test")).code).to.not.match(/^LEDGER_PROOF/);
    expect(first.phases).to.include("checked");
    // Restarted on the same state; the endpoint now says it has no eth_getProof (a liar switching proofs off).
    lying.lie = {
      answer: (req) => (req.method === "eth_getProof" ? { error: { code: -32601, message: "the method eth_getProof does not exist" } } : undefined),
    };
    const again = await agentAt(lying.url, "auto", undefined, "remembers-proofs");
    expect(await again.agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_UNAVAILABLE" });
    expect(again.log.join("\n")).to.include("in this run or an earlier one");
    lying.lie = {};
  });

  it("with a quorum provider, the proofs are read at the block it agreed on and its header must have that hash", async () => {
    const { agent, log } = await agentAt(lying.url, "on", (provider) =>
      Object.assign(provider, { agreedHead: async () => ({ number: 1, hash: "0x" + "11".repeat(32) }) }),
    );
    expect(await agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_INVALID" });
    expect(log.find((l) => l.includes("does not verify"))).to.include("is not the agreed block");
    const head = await node.provider.getBlock("latest");
    const honest = await agentAt(lying.url, "on", (provider) =>
      Object.assign(provider, { agreedHead: async () => ({ number: head!.number, hash: head!.hash! }) }),
    );
    expect((await honest.agent.considerRelease(active.id, "test")).code).to.not.match(/^LEDGER_PROOF/);
    expect(honest.phases).to.include("checked");
  });

  it("CAP-11.3-d: its own standing: suspended, it stops before asking a server (DEVICE_SUSPENDED); a forged 'active' is LEDGER_PROOF_MISMATCH", async () => {
    await node.suspend(device.credential.record.id);
    const honest = await agentAt(lying.url, "on");
    expect(await honest.agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked", code: "DEVICE_SUSPENDED" });
    lying.lie = { rewrite: forge("deviceStanding", device.credential.record.id, 1) };
    const fooled = await agentAt(lying.url, "on");
    expect(await fooled.agent.considerRelease(active.id, "test")).to.include({ outcome: "blocked", code: "LEDGER_PROOF_MISMATCH" });
    expect(fooled.log.find((l) => l.includes("lying endpoint")))
      .to.include(`the standing of device ${device.credential.record.id}`)
      .and.to.include("proves suspended");
  });
});
