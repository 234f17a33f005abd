import { expect } from "chai";
import { ethers } from "hardhat";
import { Network, Wallet, keccak256, toQuantity, toUtf8Bytes } from "ethers";
import { QuorumProvider, LedgerNoQuorum, canonicalJson } from "../../../agent/chain/endpointQuorum";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../../agent/chain/contracts";
import { deployRegistryFixture, ROLES } from "../../helpers/registryFixture";
import { LyingRpc, type RpcRequest } from "../../helpers/lyingRpc";
import { serveChain } from "../../helpers/chainEndpoint";
import { mineBlocks } from "../../helpers/mineBlocks";

const CHAIN = Network.from(31337n);
/** Every "latest" read of this endpoint answered at `block`: a frozen view. */
const frozenAt = (block: number) => ({
  params: (req: RpcRequest) => {
    const p = [...req.params];
    if (req.method === "eth_blockNumber") return undefined;
    if (req.method === "eth_getLogs") return [{ ...(p[0] as object), toBlock: toQuantity(block) }];
    const at = p.indexOf("latest");
    if (at >= 0) p[at] = toQuantity(block);
    return p;
  },
  answer: (req: RpcRequest) => (req.method === "eth_blockNumber" ? { result: toQuantity(block) } : undefined),
});
const total = (rpc: LyingRpc, method?: string) => (method ? (rpc.calls.get(method) ?? 0) : [...rpc.calls.values()].reduce((a, b) => a + b, 0));

describe("agent/chain/endpointQuorum: the ledger read through endpoints that must agree (issue 16, TUF's freeze attack)", function () {
  this.timeout(60_000);
  let chain: Awaited<ReturnType<typeof serveChain>>;
  let rpcs: LyingRpc[];
  let f: Awaited<ReturnType<typeof deployRegistryFixture>>;
  const open: QuorumProvider[] = [];
  const quorumOf = (endpoints: string[], o: ConstructorParameters<typeof QuorumProvider>[2] = {}) => {
    const p = new QuorumProvider(endpoints, CHAIN, { headTtlMs: 60_000, ...o, provider: { staticNetwork: true } });
    open.push(p);
    return p;
  };

  before(async () => {
    f = await deployRegistryFixture();
    chain = await serveChain();
    rpcs = await Promise.all([0, 1, 2].map(() => LyingRpc.start(chain.url)));
  });
  beforeEach(() => {
    for (const r of rpcs) {
      r.lie = {};
      r.calls.clear();
    }
  });
  afterEach(() => open.splice(0).forEach((p) => p.destroy()));
  after(async () => {
    await Promise.all(rpcs.map((r) => r.close()));
    await chain.close();
  });

  it("with one endpoint, a plain provider: each read is one request, none added", async () => {
    const p = quorumOf([rpcs[0].url]);
    const fleet = FleetRegistry__factory.connect(await f.fleet.getAddress(), p);
    await p.getBlockNumber();
    expect(await fleet.updateRegistry()).to.equal(await f.registry.getAddress());
    await p.getBlock("latest");
    expect(total(rpcs[0])).to.equal(3);
    expect(p.requestCounts).to.deep.equal([3]);
  });

  it("with three honest endpoints, agrees on the node's head once per TTL; a read costs q = 2 requests, eth_blockNumber and the head's header none", async () => {
    const p = quorumOf(rpcs.map((r) => r.url));
    const head = await p.agreedHead();
    const node = await ethers.provider.send("eth_getBlockByNumber", ["latest", false]);
    expect(head).to.deep.equal({
      number: Number(node.number),
      hash: node.hash,
      parentHash: node.parentHash,
      timestamp: Number(node.timestamp),
      stateRoot: node.stateRoot,
    });
    expect(p.requestCounts).to.deep.equal([1, 1, 1]);
    const fleet = FleetRegistry__factory.connect(await f.fleet.getAddress(), p);
    for (let i = 0; i < 5; i++) expect(await fleet.updateRegistry()).to.equal(await f.registry.getAddress());
    expect(await p.getBlockNumber()).to.equal(Number(node.number));
    expect((await p.getBlock("latest"))!.hash).to.equal(node.hash);
    expect(p.requestCounts).to.deep.equal([6, 6, 1]); // 5 reads asked of the first two; the third only for the head
    expect(total(rpcs[0], "eth_call")).to.equal(5);
  });

  it("REQ-10b-i: one endpoint frozen on an old block is outvoted: the head and every read are the honest chain's", async () => {
    const old = await ethers.provider.getBlockNumber();
    rpcs[0].lie = frozenAt(old);
    const [, , , , , outsider] = await ethers.getSigners();
    await (await f.registry.grantRole(ROLES.AUDITOR, outsider.address)).wait(); // a fact the frozen view cannot show
    const p = quorumOf(rpcs.map((r) => r.url));
    const registry = UpdateRegistry__factory.connect(await f.registry.getAddress(), p);
    expect(await registry.hasRole(ROLES.AUDITOR, outsider.address)).to.equal(true);
    expect((await p.agreedHead()).number).to.equal(await ethers.provider.getBlockNumber());
    // Reads go to the endpoints that agreed on the head: the frozen one is not even asked.
    expect([0, 1, 2].map((i) => total(rpcs[i], "eth_call"))).to.deep.equal([0, 1, 1]);
    // The same endpoint alone shows the old state as current: what a device with one endpoint sees.
    const alone = quorumOf([rpcs[0].url]);
    expect(await UpdateRegistry__factory.connect(await f.registry.getAddress(), alone).hasRole(ROLES.AUDITOR, outsider.address)).to.equal(false);
    expect(await alone.getBlockNumber()).to.equal(old);
  });

  it("REQ-10b-ii: one endpoint rewriting eth_call answers (a hidden revocation, a forged status) is outvoted", async () => {
    const truth = await f.registry.getAddress();
    rpcs[1].lie = { rewrite: (req, result) => (req.method === "eth_call" ? "0x" + "00".repeat(12) + "11".repeat(20) : result) };
    const p = quorumOf(rpcs.map((r) => r.url));
    expect(await FleetRegistry__factory.connect(await f.fleet.getAddress(), p).updateRegistry()).to.equal(truth);
    expect(total(rpcs[1], "eth_call")).to.equal(1);
  });

  it("two endpoints lying differently: LEDGER_NO_QUORUM, saying how many agreed and showing each endpoint by its origin only", async () => {
    rpcs[0].lie = { rewrite: (req, result) => (req.method === "eth_call" ? "0x" + "00".repeat(12) + "11".repeat(20) : result) };
    rpcs[1].lie = { rewrite: (req, result) => (req.method === "eth_call" ? "0x" + "00".repeat(12) + "22".repeat(20) : result) };
    const p = quorumOf(rpcs.map((r) => `${r.url}/v3/secret-api-key`));
    const err = await FleetRegistry__factory.connect(await f.fleet.getAddress(), p)
      .updateRegistry()
      .then(
        () => expect.fail("a read without a quorum was answered"),
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(LedgerNoQuorum);
    expect((err as LedgerNoQuorum).code).to.equal("LEDGER_NO_QUORUM");
    expect((err as LedgerNoQuorum).details).to.include({ what: "eth_call", agreeing: 1, quorum: 2 });
    expect((err as Error).message).to.include("at most 1 of 3 gave the same answer, 2 needed");
    expect((err as Error).message).to.include(`#1 ${rpcs[0].url}/…: answer A`);
    expect((err as Error).message).not.to.include("secret-api-key");
  });

  it("two endpoints frozen alike hold the quorum: it agrees on their old block, whose time and number the device then judges (LEDGER_STALE, LEDGER_BEHIND)", async () => {
    const old = await ethers.provider.getBlockNumber();
    await mineBlocks(ethers.provider, 5);
    rpcs[0].lie = frozenAt(old);
    rpcs[1].lie = frozenAt(old);
    const p = quorumOf(rpcs.map((r) => r.url));
    expect((await p.agreedHead()).number).to.equal(old);
    expect((await p.getBlock("latest"))!.number).to.equal(old);
  });

  it("an endpoint that does not answer, or claims a far newer head, does not count", async () => {
    const dead = await LyingRpc.start(chain.url);
    const deadUrl = dead.url;
    await dead.close();
    rpcs[1].lie = {
      rewrite: (req, result) =>
        req.method === "eth_getBlockByNumber" && req.params[0] === "latest"
          ? { ...(result as object), number: toQuantity(Number((result as { number: string }).number) + 1000), hash: keccak256(toUtf8Bytes("forged")) }
          : result,
    };
    const p = quorumOf([deadUrl, rpcs[1].url, rpcs[2].url, rpcs[0].url], { headTimeoutMs: 1000 });
    expect(p.quorum).to.equal(3);
    expect((await p.agreedHead()).hash).to.equal((await ethers.provider.getBlock("latest"))!.hash);
    expect(await FleetRegistry__factory.connect(await f.fleet.getAddress(), p).updateRegistry()).to.equal(await f.registry.getAddress());
  });

  it("a fork at the tip: walks back to the newest block a quorum gives alike", async () => {
    await mineBlocks(ethers.provider, 2);
    const top = await ethers.provider.getBlockNumber();
    // #2 lags one block behind; #3 forges the newest block: no two agree on `top`, all three on top - 1.
    rpcs[1].lie = {
      ...frozenAt(top - 1),
      answer: (req) => (req.method === "eth_getBlockByNumber" && req.params[0] === toQuantity(top) ? { result: null } : undefined),
    };
    rpcs[2].lie = {
      rewrite: (req, result) =>
        req.method === "eth_getBlockByNumber" && (result as { number?: string })?.number === toQuantity(top)
          ? { ...(result as object), hash: keccak256(toUtf8Bytes("another branch")) }
          : result,
    };
    const p = quorumOf(rpcs.map((r) => r.url));
    const head = await p.agreedHead();
    expect(head.number).to.equal(top - 1);
    expect(head.hash).to.equal((await ethers.provider.getBlock(top - 1))!.hash);
  });

  it("sends a transaction to every endpoint; it is mined once and its receipt read through the quorum", async () => {
    const p = quorumOf(rpcs.map((r) => r.url));
    const [funder] = await ethers.getSigners();
    const wallet = Wallet.createRandom().connect(p);
    await (await funder.sendTransaction({ to: wallet.address, value: 10n ** 18n })).wait();
    const receipt = await (await wallet.sendTransaction({ to: funder.address, value: 1n })).wait();
    expect(receipt!.status).to.equal(1);
    for (const r of rpcs) expect(total(r, "eth_sendRawTransaction")).to.equal(1);
    expect(await ethers.provider.getTransactionCount(wallet.address)).to.equal(1);
  });

  it("refuses a quorum that is not more than half of the endpoints, or more than all of them", function () {
    expect(() => new QuorumProvider(["http://a", "http://b", "http://c", "http://d"], CHAIN, { quorum: 2 })).to.throw(RangeError, /above half/);
    expect(() => new QuorumProvider(["http://a", "http://b"], CHAIN, { quorum: 3 })).to.throw(RangeError);
    expect(new QuorumProvider(["http://a", "http://b", "http://c", "http://d"], CHAIN).quorum).to.equal(3);
  });

  it("compares answers as canonical JSON: key order, hex case and client-only fields do not matter", function () {
    expect(canonicalJson({ b: "0xAB", a: [1, { d: 1, c: "x" }], totalDifficulty: "0x1" })).to.equal(canonicalJson({ a: [1, { c: "x", d: 1 }], b: "0xab" }));
    expect(canonicalJson({ a: "0x1" })).not.to.equal(canonicalJson({ a: "0x2" }));
  });
});
