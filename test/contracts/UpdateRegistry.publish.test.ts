import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, keccak256, toUtf8Bytes, ZeroHash } from "ethers";
import { encodeVersion } from "../../agent/core/version";
import { normalizeRelease } from "../../agent/core/release";
import { computeReleaseId, signRelease } from "../../agent/crypto/releaseSignature";
import {
  catalogFixture,
  makeRelease,
  publish,
  dependsOn,
  registrySnapshot,
  findWitnesses,
  ACME_SIGNER,
  GLOBEX_SIGNER,
  COMPONENTS,
} from "../helpers/registryFixture";
import { itRejectsWithoutChange, RejectionCase } from "../helpers/itRejects";

const V = encodeVersion;

/** A catalog with one bootloader release 1.0.0 (hardware 1 and 2) to depend on. */
async function withBootloaderFixture() {
  const base = await catalogFixture();
  const bootloader = await publish(
    base.registry,
    base.acmeAuthor,
    makeRelease({ component: COMPONENTS.bootloader, version: V("1.0.0"), hardware: [1, 2] }),
    ACME_SIGNER,
    base.domain,
  );
  const radio = await publish(
    base.registry,
    base.acmeAuthor,
    makeRelease({ component: COMPONENTS.radioFw, version: V("3.1.0"), hardware: [1, 2] }),
    ACME_SIGNER,
    base.domain,
  );
  return { ...base, bootloader, radio };
}

describe("UpdateRegistry: publishing releases (APP-II-1, APP-II-2, REQ-10d)", function () {
  describe("a valid release", function () {
    it("records every Table II-1 field: stored state plus a ReleasePublished event that carries the rest (APP-II-1)", async function () {
      const { registry, acmeAuthor, domain, bootloader, radio } = await loadFixture(withBootloaderFixture);
      const record = normalizeRelease(
        makeRelease({
          component: COMPONENTS.sensorFw,
          version: V("2.4.1"),
          hardware: [1, 2],
          dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0"), dependsOn(COMPONENTS.radioFw, ">=3.0.0 <4.0.0")],
        }),
      );
      const signature = await signRelease(ACME_SIGNER, domain, record);
      const witnesses = await findWitnesses(registry, record);
      expect(witnesses).to.have.members([bootloader.id, radio.id]);
      const id = computeReleaseId(domain, record);

      const tx = registry.connect(acmeAuthor).publishRelease(record, ACME_SIGNER.address, signature, witnesses);
      const receipt = await (await tx).wait();
      const block = await ethers.provider.getBlock(receipt!.blockNumber);
      await expect(tx)
        .to.emit(registry, "ReleasePublished")
        .withArgs(
          id,
          COMPONENTS.sensorFw,
          1,
          V("2.4.1"),
          block!.timestamp,
          "Acme Devices",
          (r: unknown) => {
            const ev = r as {
              fileHash: string;
              fileLink: string;
              fileName: string;
              fileSize: bigint;
              merkleRoot: string;
              hardware: bigint[];
              dependencies: unknown[];
            };
            return (
              ev.fileHash === record.fileHash &&
              ev.fileLink === record.fileLink &&
              ev.fileName === record.fileName &&
              ev.fileSize === record.fileSize &&
              ev.merkleRoot === record.merkleRoot &&
              ev.hardware.map(Number).join() === "1,2" &&
              ev.dependencies.length === 2
            );
          },
          ACME_SIGNER.address,
          signature,
        );

      const state = await registry.releaseState(id);
      expect(state.component).to.equal(COMPONENTS.sensorFw);
      expect(state.provider).to.equal(1n);
      expect(state.version).to.equal(V("2.4.1"));
      expect(state.publishedAt).to.equal(BigInt(block!.timestamp));
      expect(state.status).to.equal(1n); // Active
      expect(state.hardware.map(Number)).to.deep.equal([1, 2]);

      const [, owner, latest, count] = await registry.component(COMPONENTS.sensorFw);
      expect([owner, latest, count]).to.deep.equal([1n, V("2.4.1"), 1n]);
      expect(await registry.releaseAt(COMPONENTS.sensorFw, 0)).to.equal(id);
      expect(await registry.releaseId(record)).to.equal(id);
    });

    it("accepts a signature from a contract signer (ERC-1271), e.g. a provider's multisig (REQ-10d-ii)", async function () {
      const { registry, admin, acmeAuthor, domain } = await loadFixture(catalogFixture);
      const owner = new Wallet(keccak256(toUtf8Bytes("multisig owner")));
      const wallet = await ethers.deployContract("ERC1271SignerMock", [owner.address]);
      await registry.connect(admin).addProviderSigner(1, await wallet.getAddress());
      const record = makeRelease();
      const signature = await signRelease(owner, domain, record);
      await expect(registry.connect(acmeAuthor).publishRelease(record, await wallet.getAddress(), signature, [])).to.emit(registry, "ReleasePublished");
      // A signature the contract does not vouch for is refused.
      const other = makeRelease({ version: V("1.0.1") });
      const badSignature = await signRelease(ACME_SIGNER, domain, other);
      await expect(registry.connect(acmeAuthor).publishRelease(other, await wallet.getAddress(), badSignature, []))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryInvalidSignature")
        .withArgs(await wallet.getAddress());
    });

    it("keeps hardware beyond the six stored inline (a release for many board revisions)", async function () {
      const { registry, admin, acmeAuthor, domain } = await loadFixture(catalogFixture);
      for (let i = 4; i <= 9; i++) await registry.connect(admin).registerHardwareClass(`board-${i}`);
      const hardware = [1, 2, 3, 4, 5, 6, 7, 8, 9];
      const { id } = await publish(registry, acmeAuthor, makeRelease({ hardware }), ACME_SIGNER, domain);
      expect((await registry.releaseState(id)).hardware.map(Number)).to.deep.equal(hardware);
      expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, 9, false)).to.equal(id);
    });

    it("tells hardware lists apart beyond the six stored inline, for latestReleaseForHardware's runs", async function () {
      const { registry, admin, acmeAuthor, domain } = await loadFixture(catalogFixture);
      for (let i = 4; i <= 9; i++) await registry.connect(admin).registerHardwareClass(`board-${i}`);
      const p = (version: string, hardware: number[]) => publish(registry, acmeAuthor, makeRelease({ version: V(version), hardware }), ACME_SIGNER, domain);
      const first = await p("1.0.0", [1, 2, 3, 4, 5, 6, 7, 9]);
      const same = await p("1.1.0", [1, 2, 3, 4, 5, 6, 7, 9]); // the same list: the same run
      const other = await p("1.2.0", [1, 2, 3, 4, 5, 6, 7, 8]); // differs only in the eighth class
      const latest = (hw: number) => registry.latestReleaseForHardware(COMPONENTS.bootloader, hw, false);
      expect(await latest(9)).to.equal(same.id);
      expect(await latest(8)).to.equal(other.id);
      expect(await latest(1)).to.equal(other.id);
      expect(first.id).to.not.equal(same.id);
    });

    it("orders versions by their encoding: pre-releases come before the final release (REQ-10d-i, CAP-11.3-e)", async function () {
      const { registry, acmeAuthor, domain } = await loadFixture(catalogFixture);
      for (const v of ["1.0.0-alpha.1", "1.0.0-beta.0", "1.0.0-rc.2", "1.0.0", "1.0.1"]) {
        await publish(registry, acmeAuthor, makeRelease({ version: V(v) }), ACME_SIGNER, domain);
      }
      const [, , latest, count] = await registry.component(COMPONENTS.bootloader);
      expect(latest).to.equal(V("1.0.1"));
      expect(count).to.equal(5n);
    });
  });

  describe("rejections: each with its own error and no state change", function () {
    type Fixture = Awaited<ReturnType<typeof withBootloaderFixture>>;
    type Case = RejectionCase<Fixture>;

    const sendSigned = async (f: Fixture, record = makeRelease(), opts: { sender?: Fixture["acmeAuthor"]; signer?: Wallet; witnesses?: string[] } = {}) => {
      const signer = opts.signer ?? ACME_SIGNER;
      const signature = await signRelease(signer, f.domain, record);
      const witnesses = opts.witnesses ?? (await findWitnesses(f.registry, record));
      return f.registry.connect(opts.sender ?? f.acmeAuthor).publishRelease(record, signer.address, signature, witnesses);
    };

    const cases: Case[] = [
      {
        name: "an account that is not an author",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease(), { sender: f.outsider }),
          error: "UpdateRegistryPublisherNotAuthor",
          args: [f.outsider.address, 1],
        }),
      },
      {
        name: "an author of another provider (only a provider's authors publish its components)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease(), { sender: f.globexAuthor }),
          error: "UpdateRegistryPublisherNotAuthor",
          args: [f.globexAuthor.address, 1],
        }),
      },
      {
        name: "a record that names another provider than the component's owner",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ provider: 2 })),
          error: "UpdateRegistryProviderMismatch",
          args: [COMPONENTS.bootloader, 1, 2],
        }),
      },
      {
        name: "an unknown component",
        run: async (f) => {
          const c = keccak256(toUtf8Bytes("acme.nothing"));
          return { call: () => sendSigned(f, makeRelease({ component: c })), error: "UpdateRegistryUnknownComponent", args: [c] };
        },
      },
      {
        name: "a barred provider (CAP-11.3-c)",
        run: async (f) => {
          await f.registry.connect(f.auditor).barProvider(1, "malicious image");
          return { call: () => sendSigned(f, makeRelease({ version: V("9.0.0") })), error: "UpdateRegistryProviderBarred", args: [1] };
        },
      },
      {
        name: "a malformed version encoding",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: (V("2.0.0") & ~0xffffn) | 0xc000n })),
          error: "UpdateRegistryInvalidVersion",
          args: [(V("2.0.0") & ~0xffffn) | 0xc000n],
        }),
      },
      {
        name: "version zero",
        run: async (f) => ({ call: () => sendSigned(f, makeRelease({ version: 0n })), error: "UpdateRegistryInvalidVersion", args: [0] }),
      },
      {
        name: "the same version again (REQ-10d-i)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("1.0.0") })),
          error: "UpdateRegistryVersionNotIncreasing",
          args: [COMPONENTS.bootloader, V("1.0.0"), V("1.0.0")],
        }),
      },
      {
        name: "a downgrade (REQ-10d-i)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("0.9.9") })),
          error: "UpdateRegistryVersionNotIncreasing",
          args: [COMPONENTS.bootloader, V("1.0.0"), V("0.9.9")],
        }),
      },
      {
        name: "a pre-release of the latest version (it sorts below it)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("1.0.0-rc.9") })),
          error: "UpdateRegistryVersionNotIncreasing",
          args: [COMPONENTS.bootloader, V("1.0.0"), V("1.0.0-rc.9")],
        }),
      },
      {
        name: "a major version more than MAX_MAJOR_STEP (16) above the latest (REQ-10d-i, docs/adr/0008)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("18.0.0") })),
          error: "UpdateRegistryMajorVersionJump",
          args: [COMPONENTS.bootloader, 1, 18, 16],
        }),
      },
      {
        name: "a zero file hash",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileHash: ZeroHash })),
          error: "UpdateRegistryZeroFileHash",
          args: [],
        }),
      },
      {
        name: "a zero Merkle root",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), merkleRoot: ZeroHash })),
          error: "UpdateRegistryZeroMerkleRoot",
          args: [],
        }),
      },
      {
        name: "a zero file size",
        run: async (f) => ({ call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileSize: 0n })), error: "UpdateRegistryZeroFileSize", args: [] }),
      },
      {
        name: "an empty file link",
        run: async (f) => ({ call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileLink: "" })), error: "UpdateRegistryEmptyFileLink", args: [] }),
      },
      {
        name: "an empty file name",
        run: async (f) => ({ call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileName: "" })), error: "UpdateRegistryEmptyFileName", args: [] }),
      },
      {
        name: "a file link over 128 bytes",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileLink: "b".repeat(129) })),
          error: "UpdateRegistryFileLinkTooLong",
          args: [129, 128],
        }),
      },
      {
        name: "a file name over 255 bytes",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), fileName: "f".repeat(256) })),
          error: "UpdateRegistryFileNameTooLong",
          args: [256, 255],
        }),
      },
      {
        name: "no supported hardware",
        run: async (f) => ({ call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), hardware: [] })), error: "UpdateRegistryNoHardware", args: [] }),
      },
      {
        name: "more than 32 hardware classes",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), hardware: Array.from({ length: 33 }, (_, i) => i + 1) })),
          error: "UpdateRegistryTooManyHardwareClasses",
          args: [33, 32],
        }),
      },
      {
        name: "hardware not strictly ascending (a duplicate)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), hardware: [1, 1] })),
          error: "UpdateRegistryHardwareNotAscending",
          args: [1],
        }),
      },
      {
        name: "an unregistered hardware class",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), hardware: [1, 4] })),
          error: "UpdateRegistryUnknownHardwareClass",
          args: [4],
        }),
      },
      {
        name: "hardware class 0",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0"), hardware: [0] })),
          error: "UpdateRegistryUnknownHardwareClass",
          args: [0],
        }),
      },
      {
        name: "more than 16 dependencies",
        run: async (f) => {
          const deps = Array.from({ length: 17 }, (_, i) => ({ component: ethers.toBeHex(i + 1, 32), minVersion: 1n, maxVersion: 2n }));
          return {
            call: () => sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: deps }), { witnesses: deps.map(() => ZeroHash) }),
            error: "UpdateRegistryTooManyDependencies",
            args: [17, 16],
          };
        },
      },
      {
        name: "a witness list of the wrong length",
        run: async (f) => ({
          call: () =>
            sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")] }), { witnesses: [] }),
          error: "UpdateRegistryWitnessCountMismatch",
          args: [1, 0],
        }),
      },
      {
        name: "dependencies not ascending by component (a duplicate)",
        run: async (f) => {
          const d = dependsOn(COMPONENTS.bootloader, "^1.0.0");
          return {
            call: () => sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [d, d] }), { witnesses: [f.bootloader.id, f.bootloader.id] }),
            error: "UpdateRegistryDependencyNotAscending",
            args: [1],
          };
        },
      },
      {
        name: "a dependency on the component itself",
        run: async (f) => ({
          call: () =>
            sendSigned(f, makeRelease({ version: V("2.0.0"), dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")] }), { witnesses: [f.bootloader.id] }),
          error: "UpdateRegistrySelfDependency",
          args: [0],
        }),
      },
      {
        name: "an empty dependency range",
        run: async (f) => ({
          call: () =>
            sendSigned(
              f,
              makeRelease({
                component: COMPONENTS.sensorFw,
                dependencies: [{ component: COMPONENTS.bootloader, minVersion: V("2.0.0"), maxVersion: V("2.0.0") }],
              }),
              { witnesses: [f.bootloader.id] },
            ),
          error: "UpdateRegistryInvalidDependencyRange",
          args: [0, V("2.0.0"), V("2.0.0")],
        }),
      },
      {
        name: "a dependency on an unregistered component",
        run: async (f) => {
          const c = keccak256(toUtf8Bytes("nobody.lib"));
          return {
            call: () =>
              sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [{ component: c, minVersion: 1n, maxVersion: 2n }] }), {
                witnesses: [ZeroHash],
              }),
            error: "UpdateRegistryUnknownComponent",
            args: [c],
          };
        },
      },
      {
        name: "a dependency no release satisfies (APP-II-2)",
        run: async (f) => {
          const d = dependsOn(COMPONENTS.bootloader, "^2.0.0");
          return {
            call: () => sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [d] }), { witnesses: [f.bootloader.id] }),
            error: "UpdateRegistryDependencyNotSatisfied",
            args: [0, COMPONENTS.bootloader, d.minVersion, d.maxVersion, f.bootloader.id],
          };
        },
      },
      {
        name: "a witness that is a release of another component",
        run: async (f) => {
          const d = dependsOn(COMPONENTS.bootloader, ">=0.1.0");
          return {
            call: () => sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [d] }), { witnesses: [f.radio.id] }),
            error: "UpdateRegistryDependencyNotSatisfied",
            args: [0, COMPONENTS.bootloader, d.minVersion, d.maxVersion, f.radio.id],
          };
        },
      },
      {
        name: "a dependency whose only satisfying release is revoked (APP-II-2)",
        run: async (f) => {
          await f.registry.connect(f.auditor).revokeRelease(f.bootloader.id, "backdoor found");
          const d = dependsOn(COMPONENTS.bootloader, "^1.0.0");
          return {
            call: () => sendSigned(f, makeRelease({ component: COMPONENTS.sensorFw, dependencies: [d] }), { witnesses: [f.bootloader.id] }),
            error: "UpdateRegistryDependencyNotSatisfied",
            args: [0, COMPONENTS.bootloader, d.minVersion, d.maxVersion, f.bootloader.id],
          };
        },
      },
      {
        name: "a dependency on a barred provider's component: its releases no longer vouch for new ones (CAP-11.3-c)",
        run: async (f) => {
          await f.registry.connect(f.auditor).barProvider(1, "malicious image");
          const d = dependsOn(COMPONENTS.bootloader, "^1.0.0");
          const record = makeRelease({ provider: 2, component: COMPONENTS.globexApp, dependencies: [d] });
          return {
            call: () => sendSigned(f, record, { sender: f.globexAuthor, signer: GLOBEX_SIGNER, witnesses: [f.bootloader.id] }),
            error: "UpdateRegistryDependencyProviderBarred",
            args: [0, COMPONENTS.bootloader, 1],
          };
        },
      },
      {
        name: "a signer that is not one of the provider's keys (REQ-10d-ii)",
        run: async (f) => ({
          call: () => sendSigned(f, makeRelease({ version: V("2.0.0") }), { signer: GLOBEX_SIGNER }),
          error: "UpdateRegistrySignerNotAuthorized",
          args: [1, GLOBEX_SIGNER.address],
        }),
      },
      {
        name: "a signature over different fields: an altered record (CAP-11.4-a)",
        run: async (f) => {
          const signed = makeRelease({ version: V("2.0.0") });
          const signature = await signRelease(ACME_SIGNER, f.domain, signed);
          const altered = { ...signed, fileLink: "bafkreialteredlink" };
          return {
            call: () => f.registry.connect(f.acmeAuthor).publishRelease(altered, ACME_SIGNER.address, signature, []),
            error: "UpdateRegistryInvalidSignature",
            args: [ACME_SIGNER.address],
          };
        },
      },
      {
        name: "a signature made for another registry: cross-deployment replay (CAP-11.4-a)",
        run: async (f) => {
          const record = makeRelease({ version: V("2.0.0") });
          const otherDomain = { ...f.domain, verifyingContract: ethers.Wallet.createRandom().address };
          const signature = await signRelease(ACME_SIGNER, otherDomain, record);
          return {
            call: () => f.registry.connect(f.acmeAuthor).publishRelease(record, ACME_SIGNER.address, signature, []),
            error: "UpdateRegistryInvalidSignature",
            args: [ACME_SIGNER.address],
          };
        },
      },
      {
        name: "a signer whose key was removed",
        run: async (f) => {
          await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
          return {
            call: () => sendSigned(f, makeRelease({ version: V("2.0.0") })),
            error: "UpdateRegistrySignerNotAuthorized",
            args: [1, ACME_SIGNER.address],
          };
        },
      },
    ];

    itRejectsWithoutChange(cases, {
      fixture: withBootloaderFixture,
      contract: (f) => f.registry,
      snapshot: (f) => registrySnapshot(f.registry),
    });

    it("finding: a release at 65535.65535.65535 no longer freezes its component: a major jump is bounded, and the component goes on after the runaway release is revoked (REQ-10d-i)", async function () {
      const f = await loadFixture(withBootloaderFixture);
      const { registry, acmeAuthor, auditor, domain } = f;
      expect(await registry.MAX_MAJOR_STEP()).to.equal(16n);
      const before = await registrySnapshot(registry);
      // The attack of the security review: a compromised author and signing key publish the highest version.
      const runaway = makeRelease({ version: V("65535.65535.65535") });
      await expect(sendSigned(f, runaway))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryMajorVersionJump")
        .withArgs(COMPONENTS.bootloader, 1, 65535, 16);
      expect(await registrySnapshot(registry)).to.deep.equal(before);
      // The most one release can take is 16 majors; revoked, it leaves the component publishable.
      const furthest = await publish(registry, acmeAuthor, makeRelease({ version: V("17.65535.65535") }), ACME_SIGNER, domain);
      await registry.connect(auditor).revokeRelease(furthest.id, "runaway version");
      const next = await publish(registry, acmeAuthor, makeRelease({ version: V("18.0.0") }), ACME_SIGNER, domain);
      expect(await registry.latestRelease(COMPONENTS.bootloader, false)).to.equal(next.id);
      // A component's first release is free: a component may start at any version (e.g. a year).
      await publish(registry, acmeAuthor, makeRelease({ component: COMPONENTS.sensorFw, version: V("2026.1.0") }), ACME_SIGNER, domain);
      expect((await registry.component(COMPONENTS.sensorFw)).latestVersion).to.equal(V("2026.1.0"));
    });

    it("rejects a replay of an already published record (same id, version no longer increasing)", async function () {
      const f = await loadFixture(withBootloaderFixture);
      const before = await registrySnapshot(f.registry);
      const witnesses = await findWitnesses(f.registry, f.bootloader.record);
      await expect(f.registry.connect(f.acmeAuthor).publishRelease(f.bootloader.record, ACME_SIGNER.address, f.bootloader.signature, witnesses))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistryVersionNotIncreasing")
        .withArgs(COMPONENTS.bootloader, V("1.0.0"), V("1.0.0"));
      expect(await registrySnapshot(f.registry)).to.deep.equal(before);
    });

    it("lets a barred provider publish again only after an administrator lifts the bar", async function () {
      const f = await loadFixture(withBootloaderFixture);
      await f.registry.connect(f.auditor).barProvider(1, "malicious image");
      await time.increase(60);
      await expect(f.registry.connect(f.auditor).unbarProvider(1))
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.auditor.address, ethers.keccak256(ethers.toUtf8Bytes("ADMINISTRATOR_ROLE")));
      await f.registry.connect(f.admin).unbarProvider(1);
      await expect(sendSigned(f, makeRelease({ version: V("1.1.0") }))).to.emit(f.registry, "ReleasePublished");
    });
  });
});
