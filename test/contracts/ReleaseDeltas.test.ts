import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toUtf8Bytes } from "ethers";
import { encodeVersion } from "../../agent/core/version";
import { ACME_SIGNER, COMPONENTS, catalogFixture, makeRelease, publish } from "../helpers/registryFixture";
import { itRejectsWithoutChange, type RejectionCase } from "../helpers/itRejects";
import type { ReleaseDeltas } from "../../typechain-types";

const V = encodeVersion;
const LINK = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/** The catalog plus bootloader 1.0.0, 1.1.0 and 1.2.0, sensor firmware 2.0.0, and ReleaseDeltas beside the registry. */
async function deltasFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, domain } = base;
  const v100 = await publish(registry, acmeAuthor, makeRelease({ version: V("1.0.0") }), ACME_SIGNER, domain);
  const v110 = await publish(registry, acmeAuthor, makeRelease({ version: V("1.1.0") }), ACME_SIGNER, domain);
  const v120 = await publish(registry, acmeAuthor, makeRelease({ version: V("1.2.0") }), ACME_SIGNER, domain);
  const sensor = await publish(registry, acmeAuthor, makeRelease({ component: COMPONENTS.sensorFw, version: V("2.0.0") }), ACME_SIGNER, domain);
  const deltas = (await ethers.deployContract("ReleaseDeltas", [await registry.getAddress()])) as unknown as ReleaseDeltas;
  return { ...base, deltas, v100, v110, v120, sensor };
}
type F = Awaited<ReturnType<typeof deltasFixture>>;

const HASH = keccak256(toUtf8Bytes("delta plaintext"));
const ROOT = keccak256(toUtf8Bytes("delta chunks"));

describe("ReleaseDeltas", function () {
  it("REQ-10e-i: records a delta from an older release of the component, with every field in its event", async function () {
    const { deltas, acmeAuthor, v100, v120 } = await loadFixture(deltasFixture);
    await expect(deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 4096n, LINK))
      .to.emit(deltas, "DeltaAdded")
      .withArgs(v120.id, v100.id, COMPONENTS.bootloader, HASH, ROOT, 4096n, LINK, acmeAuthor.address);
    const d = await deltas.delta(v120.id, v100.id);
    expect([d.deltaHash, d.merkleRoot, d.size, d.link]).to.deep.equal([HASH, ROOT, 4096n, LINK]);
    expect(await deltas.deltaBases(v120.id)).to.deep.equal([v100.id]);
    expect((await deltas.delta(v120.id, ethers.ZeroHash)).size).to.equal(0n);
    expect(await deltas.updateRegistry()).to.equal(await (await loadFixture(deltasFixture)).registry.getAddress());
  });

  it("REQ-10e-i: keeps several bases of one release in the order recorded, and a vulnerable release may carry deltas", async function () {
    const { deltas, registry, acmeAuthor, auditor, v100, v110, v120 } = await loadFixture(deltasFixture);
    await registry.connect(auditor).flagVulnerable(v120.id, "CVE-2026-0001");
    await deltas.connect(acmeAuthor).addDelta(v120.id, v110.id, HASH, ROOT, 1n, LINK);
    await deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 2n, LINK);
    expect(await deltas.deltaBases(v120.id)).to.deep.equal([v110.id, v100.id]);
  });

  it("REQ-10e-i: takes at most MAX_DELTAS deltas per release", async function () {
    const { deltas, registry, acmeAuthor, domain, v100 } = await loadFixture(deltasFixture);
    const max = Number(await deltas.MAX_DELTAS());
    const bases = [v100.id];
    for (let i = 1; i <= max; i++) bases.push((await publish(registry, acmeAuthor, makeRelease({ version: V(`3.0.${i}`) }), ACME_SIGNER, domain)).id);
    const top = await publish(registry, acmeAuthor, makeRelease({ version: V("4.0.0") }), ACME_SIGNER, domain);
    for (const b of bases.slice(0, max)) await deltas.connect(acmeAuthor).addDelta(top.id, b, HASH, ROOT, 1n, LINK);
    await expect(deltas.connect(acmeAuthor).addDelta(top.id, bases[max], HASH, ROOT, 1n, LINK))
      .to.be.revertedWithCustomError(deltas, "ReleaseDeltasTooMany")
      .withArgs(top.id, max);
  });

  const cases: RejectionCase<F, { id: string; from: string }>[] = [
    {
      name: "CAP-11.4-a: a delta of a release unknown to the registry",
      run: async ({ deltas, acmeAuthor, v100 }) => {
        const id = keccak256(toUtf8Bytes("no such release"));
        return {
          call: () => deltas.connect(acmeAuthor).addDelta(id, v100.id, HASH, ROOT, 1n, LINK),
          error: "ReleaseDeltasUnknownRelease",
          args: [id],
          probe: { id, from: v100.id },
        };
      },
    },
    {
      name: "CAP-11.4-a: a delta from a base unknown to the registry",
      run: async ({ deltas, acmeAuthor, v120 }) => {
        const from = keccak256(toUtf8Bytes("no such base"));
        return {
          call: () => deltas.connect(acmeAuthor).addDelta(v120.id, from, HASH, ROOT, 1n, LINK),
          error: "ReleaseDeltasUnknownRelease",
          args: [from],
          probe: { id: v120.id, from },
        };
      },
    },
    {
      name: "CAP-11.4-a: a delta recorded by an author of another provider",
      run: async ({ deltas, globexAuthor, v100, v120 }) => ({
        call: () => deltas.connect(globexAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, LINK),
        error: "ReleaseDeltasNotAuthor",
        args: [globexAuthor.address, 1],
        probe: { id: v120.id, from: v100.id },
      }),
    },
    {
      name: "CAP-11.4-a: a delta recorded by an account that is no author",
      run: async ({ deltas, outsider, v100, v120 }) => ({
        call: () => deltas.connect(outsider).addDelta(v120.id, v100.id, HASH, ROOT, 1n, LINK),
        error: "ReleaseDeltasNotAuthor",
        args: [outsider.address, 1],
        probe: { id: v120.id, from: v100.id },
      }),
    },
    {
      name: "CAP-11.3-c: a delta of a revoked release",
      run: async ({ deltas, registry, acmeAuthor, auditor, v100, v120 }) => {
        await registry.connect(auditor).revokeRelease(v120.id, "malicious");
        return {
          call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, LINK),
          error: "ReleaseDeltasReleaseRevoked",
          args: [v120.id],
          probe: { id: v120.id, from: v100.id },
        };
      },
    },
    {
      name: "CAP-11.3-c: a delta of a barred provider's release",
      run: async ({ deltas, registry, acmeAuthor, auditor, v100, v120 }) => {
        await registry.connect(auditor).barProvider(1, "malicious images");
        return {
          call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, LINK),
          error: "ReleaseDeltasProviderBarred",
          args: [1],
          probe: { id: v120.id, from: v100.id },
        };
      },
    },
    {
      name: "REQ-10d-ii: a delta from a release of another component",
      run: async ({ deltas, acmeAuthor, sensor, v120 }) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v120.id, sensor.id, HASH, ROOT, 1n, LINK),
        error: "ReleaseDeltasComponentMismatch",
        args: [COMPONENTS.bootloader, COMPONENTS.sensorFw],
        probe: { id: v120.id, from: sensor.id },
      }),
    },
    {
      name: "REQ-10d-i: a delta from a newer release",
      run: async ({ deltas, acmeAuthor, v100, v120 }) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v100.id, v120.id, HASH, ROOT, 1n, LINK),
        error: "ReleaseDeltasBaseNotOlder",
        args: [V("1.0.0"), V("1.2.0")],
        probe: { id: v100.id, from: v120.id },
      }),
    },
    {
      name: "REQ-10d-i: a delta from the release itself",
      run: async ({ deltas, acmeAuthor, v120 }) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v120.id, HASH, ROOT, 1n, LINK),
        error: "ReleaseDeltasBaseNotOlder",
        args: [V("1.2.0"), V("1.2.0")],
        probe: { id: v120.id, from: v120.id },
      }),
    },
    {
      name: "CAP-11.4-a: a second delta from the same base (deltas are immutable)",
      run: async ({ deltas, acmeAuthor, v100, v120 }) => {
        await deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, LINK);
        const other = keccak256(toUtf8Bytes("another delta"));
        return {
          call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, other, ROOT, 2n, LINK),
          error: "ReleaseDeltasAlreadyRecorded",
          args: [v120.id, v100.id],
          probe: { id: v120.id, from: v100.id },
        };
      },
    },
    ...(
      [
        ["a zero delta hash", ethers.ZeroHash, ROOT, 1n],
        ["a zero Merkle root", HASH, ethers.ZeroHash, 1n],
        ["a zero size", HASH, ROOT, 0n],
      ] as const
    ).map(([name, hash, root, size]) => ({
      name,
      run: async ({ deltas, acmeAuthor, v100, v120 }: F) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, hash, root, size, LINK),
        error: "ReleaseDeltasEmptyField",
        probe: { id: v120.id, from: v100.id },
      }),
    })),
    {
      name: "an empty link",
      run: async ({ deltas, acmeAuthor, v100, v120 }) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, ""),
        error: "ReleaseDeltasBadLink",
        args: [0, 128],
        probe: { id: v120.id, from: v100.id },
      }),
    },
    {
      name: "a link over 128 bytes",
      run: async ({ deltas, acmeAuthor, v100, v120 }) => ({
        call: () => deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, "b".repeat(129)),
        error: "ReleaseDeltasBadLink",
        args: [129, 128],
        probe: { id: v120.id, from: v100.id },
      }),
    },
  ];

  itRejectsWithoutChange(cases, {
    fixture: deltasFixture,
    contract: (f) => f.deltas,
    snapshot: async ({ deltas }, probe) => {
      const d = probe ? await deltas.delta(probe.id, probe.from) : undefined;
      return { delta: d?.map(String), bases: probe ? [...(await deltas.deltaBases(probe.id))] : [] };
    },
  });

  it("accepts a link of exactly 128 bytes", async function () {
    const { deltas, acmeAuthor, v100, v120 } = await loadFixture(deltasFixture);
    await expect(deltas.connect(acmeAuthor).addDelta(v120.id, v100.id, HASH, ROOT, 1n, "b".repeat(128))).to.emit(deltas, "DeltaAdded");
  });
});
