import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../../agent/cli/config";
import { openChain } from "../../../agent/cli/connect";
import { deployRegistryFixture } from "../../helpers/registryFixture";
import { LyingRpc } from "../../helpers/lyingRpc";
import { serveChain } from "../../helpers/chainEndpoint";

/** The error `p` fails with, checked to carry `code`. */
async function failure(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    () => expect.fail(`expected an error with code ${code}`),
    (e: unknown) => e as Error & { code?: string },
  );
  expect(err.code, String(err)).to.equal(code);
  return err;
}

describe("agent/cli/connect: opening the ledger through several endpoints (REQ-10b-i, REQ-10b-ii: freshness, issue 16)", function () {
  this.timeout(60_000);
  let chain: Awaited<ReturnType<typeof serveChain>>;
  let rpcs: LyingRpc[];
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const f = await deployRegistryFixture();
    chain = await serveChain();
    rpcs = await Promise.all([0, 1, 2].map(() => LyingRpc.start(chain.url)));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-connect-"));
    env = { OTA_REGISTRY: await f.registry.getAddress(), OTA_FLEET: await f.fleet.getAddress(), OTA_CHAIN_ID: "31337" };
  });
  beforeEach(() => rpcs.forEach((r) => (r.lie = {})));
  after(async () => {
    await Promise.all(rpcs.map((r) => r.close()));
    await chain?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const open = async (urls: string[], extra: NodeJS.ProcessEnv = {}) =>
    openChain(await loadConfig({ cwd: dir, env: { ...env, OTA_RPC_URLS: urls.join(","), ...extra } }));

  it("opens one QuorumProvider over every endpoint, with the configured quorum, and reads through it", async () => {
    const c = await open(rpcs.map((r) => r.url));
    try {
      expect(c.provider.endpointCount).to.equal(3);
      expect(c.provider.quorum).to.equal(2);
      expect(await c.fleet.updateRegistry()).to.equal(env.OTA_REGISTRY);
    } finally {
      c.provider.destroy();
    }
  });

  it("checks the chain id of every endpoint: one serving another chain is named (by origin only)", async () => {
    rpcs[2].lie = { answer: (req) => (req.method === "eth_chainId" ? { result: "0x1" } : undefined) };
    const err = await failure(open(rpcs.map((r) => `${r.url}/key-123`)), "WRONG_CHAIN_ID");
    expect(err.message).to.equal(`wrong chain id: the RPC at ${rpcs[2].url}/… is chain 1, the config says 31337; fix chainId or rpcUrls`);
  });

  it("starts with an endpoint down as long as the quorum answers, and refuses to when it does not", async () => {
    const dead = await LyingRpc.start(chain.url);
    const deadUrl = dead.url;
    await dead.close();
    const c = await open([rpcs[0].url, deadUrl, rpcs[1].url]);
    c.provider.destroy();
    const err = await failure(open([rpcs[0].url, deadUrl, rpcs[1].url], { OTA_RPC_QUORUM: "3" }), "RPC_UNREACHABLE");
    expect(err.message).to.match(/^only 2 of the 3 RPC endpoints answer, and 3 must agree: http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\) do not/);
  });
});
