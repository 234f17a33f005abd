import { expect } from "chai";
import { ethers, network } from "hardhat";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { catalogFixture, makeRelease, publish, ACME_SIGNER } from "../../helpers/registryFixture";
import { encodeVersion } from "../../../agent/core/version";
import { LedgerWatcher, type LedgerEvent } from "../../../agent/consumer/ledgerWatcher";

describe("agent/consumer/ledgerWatcher: the in-device tracker (DEP-8.1-a, DEP-8.2.1)", function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "ota-watch-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const watch = (f: Awaited<ReturnType<typeof catalogFixture>>, seen: LedgerEvent[], fromBlock: number, maxRange = 2000) =>
    new LedgerWatcher(ethers.provider, f.registry, path.join(dir, "checkpoint.json"), async (events) => void seen.push(...events), {
      fromBlock,
      pollMs: 60_000,
      maxRange,
    });

  it("DEP-8.2.1: sees releases, revocations and flags in order, in bounded ranges, and resumes after a restart without skipping or repeating", async () => {
    const f = await catalogFixture();
    const start = await ethers.provider.getBlockNumber();
    const v1 = await publish(f.registry, f.acmeAuthor, makeRelease({ version: encodeVersion("1.0.0") }), ACME_SIGNER, f.domain);
    const seen: LedgerEvent[] = [];
    const first = watch(f, seen, start, 1);
    await first.poll();
    expect(seen.map((e) => e.kind)).to.deep.equal(["published"]);
    expect(JSON.parse(readFileSync(path.join(dir, "checkpoint.json"), "utf8")).block).to.equal(await ethers.provider.getBlockNumber());
    await first.stop();

    // Down while the ledger moves on.
    const v2 = await publish(f.registry, f.acmeAuthor, makeRelease({ version: encodeVersion("1.1.0") }), ACME_SIGNER, f.domain);
    await f.registry.connect(f.auditor).flagVulnerable(v1.id, "CVE-2026-0001");
    await f.registry.connect(f.auditor).revokeRelease(v2.id, "bad build");
    const second = watch(f, seen, start);
    await second.poll();
    await second.poll(); // nothing new: nothing repeated
    await second.stop();
    expect(seen.map((e) => `${e.kind}:${"releaseId" in e ? e.releaseId : ""}`)).to.deep.equal([
      `published:${v1.id}`,
      `published:${v2.id}`,
      `vulnerable:${v1.id}`,
      `revoked:${v2.id}`,
    ]);
    expect(second.head.number).to.equal(await ethers.provider.getBlockNumber());
  });

  it("steps back and reads again when its checkpoint block was reorganised away", async () => {
    const f = await catalogFixture();
    const start = await ethers.provider.getBlockNumber();
    const snapshot = await network.provider.send("evm_snapshot");
    await publish(f.registry, f.acmeAuthor, makeRelease({ version: encodeVersion("2.0.0") }), ACME_SIGNER, f.domain);
    const seen: LedgerEvent[] = [];
    const w = watch(f, seen, start);
    await w.poll();
    expect(seen).to.have.length(1);
    await network.provider.send("evm_revert", [snapshot]);
    const other = await publish(f.registry, f.acmeAuthor, makeRelease({ version: encodeVersion("3.0.0") }), ACME_SIGNER, f.domain);
    await w.poll();
    await w.stop();
    expect(seen.map((e) => ("releaseId" in e ? e.releaseId : ""))).to.include(other.id);
  });
});
