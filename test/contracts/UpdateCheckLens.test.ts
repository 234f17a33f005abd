import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { ACME_SIGNER, catalogFixture, makeRelease, publish } from "../helpers/registryFixture";
import { readUpdateFacts } from "../../agent/chain/ledgerLens";
import { decodeReleasePublished, type LedgerRelease } from "../../agent/chain/releaseEvents";
import { queryLogs } from "../../agent/chain/queryLogs";
import { encodeVersion } from "../../agent/core/version";
import type { UpdateCheckLens } from "../../typechain-types";

describe("UpdateCheckLens: one read for an update check (issue 17, REQ-10d-ii)", function () {
  async function fixture() {
    const f = await catalogFixture();
    const device = {
      id: keccak256(toUtf8Bytes("lens device")),
      publicKey: "0x02" + "11".repeat(32),
      hardwareClass: 1,
      network: encodeBytes32String("plant-1"),
      region: encodeBytes32String("eu-west"),
    };
    await (await f.fleet.connect(f.admin).enrolDevice(device)).wait();
    const published = await publish(f.registry, f.acmeAuthor, makeRelease({ version: encodeVersion("1.2.0") }), ACME_SIGNER, f.domain);
    const [log] = await queryLogs(f.registry, f.registry.filters.ReleasePublished(published.id), 0);
    const release = decodeReleasePublished(f.registry, f.domain, log);
    const chain = { provider: ethers.provider, registry: f.registry, fleet: f.fleet };
    return { ...f, device, release, chain };
  }

  it("answers, deployless (an eth_call with no `to`), every fact of the check at one block", async () => {
    const { chain, release, device } = await loadFixture(fixture);
    const facts = await readUpdateFacts(chain, { release, device: { record: device, batchId: 0, proof: [] }, running: [release.id] });
    const head = await ethers.provider.getBlock("latest");
    expect(facts.block).to.deep.equal({ number: head!.number, timestamp: head!.timestamp });
    expect(facts.stored).to.include({ component: release.record.component, provider: 1, version: release.record.version, status: "active" });
    expect(facts.stored!.publishedAt).to.equal(release.releasedAt);
    expect(facts).to.include({ providerName: "Acme Devices", providerBarred: false, signerRegistered: true, signerIsContract: false, standing: "active" });
    expect(facts.running.get(release.id.toLowerCase())).to.equal("active");
    expect(facts.verdict).to.deep.equal({ verdict: "INSTALLABLE", policy: null, reason: 0n });
  });

  it("an unknown release is not known (no revert), a stranger's standing is unknown, a barred provider is barred", async () => {
    const f = await loadFixture(fixture);
    await (await f.registry.connect(f.admin).barProvider(1, "test")).wait();
    const forged: LedgerRelease = { ...f.release, id: keccak256(toUtf8Bytes("no such release")) };
    const stranger = { ...f.device, id: keccak256(toUtf8Bytes("never enrolled")) };
    const facts = await readUpdateFacts(f.chain, { release: forged, device: { record: stranger, batchId: 0, proof: [] } });
    expect(facts.stored).to.equal(undefined);
    expect(facts).to.include({ providerBarred: true, standing: "unknown" });
    expect(facts.verdict.verdict).to.equal("PROVIDER_BARRED"); // the registry checks the record itself (a known one, of a barred provider)
  });

  it("asks a contract signer whether it vouches for the release (ERC-1271)", async () => {
    const f = await loadFixture(fixture);
    const [owner] = await ethers.getSigners();
    const wallet = await ethers.deployContract("ERC1271SignerMock", [owner.address]);
    const signature = await owner.signMessage("not the release");
    const facts = await readUpdateFacts(f.chain, { release: { ...f.release, signer: await wallet.getAddress(), signature } });
    expect(facts).to.include({ signerIsContract: true, signerVouches: false, signerRegistered: false, standing: undefined });
  });

  it("deployed with no query, it is an ordinary contract whose answer() gives the same facts", async () => {
    const f = await loadFixture(fixture);
    const lens = (await ethers.deployContract("UpdateCheckLens", [[]])) as unknown as UpdateCheckLens;
    const query = {
      registry: await f.registry.getAddress(),
      fleet: await f.fleet.getAddress(),
      policies: ethers.ZeroAddress,
      releaseId: f.release.id,
      release: f.release.record,
      signer: f.release.signer,
      signature: f.release.signature,
      device: f.device,
      batchId: 0,
      proof: [],
      installed: [],
      running: [],
      evidence: "0x",
    };
    const [answer] = await lens.answer([query]);
    const deployless = await readUpdateFacts(f.chain, { release: f.release, device: { record: f.device, batchId: 0, proof: [] } });
    expect(answer.known).to.equal(true);
    expect(Number(answer.standing)).to.equal(1);
    expect(Number(answer.verdict)).to.equal(0);
    expect(Number(answer.blockNumber)).to.equal(deployless.block.number);
  });

  /** The eth_call requests a provider sends: whether each carried a `to`, and its size. */
  function watchCalls(provider: typeof ethers.provider) {
    const calls: { to?: string; bytes: number }[] = [];
    const send = provider.send.bind(provider);
    const watched = Object.create(provider) as typeof provider;
    watched.send = async (method: string, params: unknown[]) => {
      if (method === "eth_call") {
        const tx = params[0] as { to?: string; data: string };
        calls.push({ to: tx.to, bytes: (tx.data.length - 2) / 2 });
      }
      return send(method, params);
    };
    return { provider: watched, calls };
  }

  it("where the lens is deployed (chain.lens), reads call it with the query alone, after checking its code once, and answer the same", async () => {
    const f = await loadFixture(fixture);
    const lens = await ethers.deployContract("UpdateCheckLens", [[]]);
    const { provider, calls } = watchCalls(ethers.provider);
    const chain = { ...f.chain, provider, lens: await lens.getAddress() };
    const query = { release: f.release, device: { record: f.device, batchId: 0, proof: [] }, running: [f.release.id] };
    const viaDeployed = await readUpdateFacts(chain, query);
    await readUpdateFacts(chain, query);
    const deployless = await readUpdateFacts(f.chain, query);
    expect({ ...viaDeployed, block: undefined }).to.deep.equal({ ...deployless, block: undefined });
    // The code check (one creation-code call with no query), then one call with `to` per read.
    expect(calls.map((c) => c.to?.toLowerCase())).to.deep.equal([undefined, chain.lens.toLowerCase(), chain.lens.toLowerCase()]);
    expect(calls[1].bytes).to.be.below(2000); // the query alone, against 12 KB of creation code
  });

  it("code at the configured lens address that is not this build's lens is never asked: the creation code is sent instead", async () => {
    const f = await loadFixture(fixture);
    // Another contract (here the fleet registry) named as the lens: a misconfiguration, or an attempt to answer for it.
    const { provider, calls } = watchCalls(ethers.provider);
    const chain = { ...f.chain, provider, lens: await f.fleet.getAddress() };
    const facts = await readUpdateFacts(chain, { release: f.release });
    expect(facts.stored?.status).to.equal("active");
    expect(calls.every((c) => c.to === undefined)).to.equal(true);
    // An address with no code at all is refused the same way.
    const empty = { ...f.chain, provider, lens: "0x" + "42".repeat(20) };
    expect((await readUpdateFacts(empty, { release: f.release })).stored?.status).to.equal("active");
    expect(calls.every((c) => c.to === undefined)).to.equal(true);
  });
});
