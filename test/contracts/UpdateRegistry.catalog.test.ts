import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, ZeroAddress, keccak256, toBeHex, toUtf8Bytes } from "ethers";
import { componentId } from "../../agent/core/release";
import { deployRegistryFixture, catalogFixture, ROLES, ACME_SIGNER, GLOBEX_SIGNER, COMPONENTS } from "../helpers/registryFixture";
import type { UpdateRegistry } from "../../typechain-types";
import { itRejectsWithoutChange, RejectionCase as SharedRejectionCase } from "../helpers/itRejects";

type Fixture = Awaited<ReturnType<typeof catalogFixture>>;

/** A signing key no provider has yet. */
const NEW_SIGNER = new Wallet(keccak256(toUtf8Bytes("initech release signing key")));
/** A component name the fixtures do not register. */
const NEW_COMPONENT = "globex.gateway-fw";
/** 65 bytes: one over the registry's 64-byte name limit. */
const LONG_NAME = "n".repeat(65);
/** 32 two-byte characters: 64 bytes, exactly the limit (the limit counts UTF-8 bytes). */
const NAME_OF_64_BYTES = "\u00e9".repeat(32);

/**
 * The provider(id) view. TypeChain leaves `provider` off the typed contract (the name clashes with
 * ethers' own `provider`), so it is reached by name; the call is the same.
 */
const providerView = (registry: UpdateRegistry, id: number) => registry.getFunction("provider")(id);

/**
 * Everything the catalog holds that the tests below can reach: sizes and entries of providers
 * and hardware classes, the known components, every signer and author link, and every role of
 * every test account. A rejected call must leave all of it as it was.
 */
async function catalogState(f: Fixture) {
  const { registry } = f;
  const accounts = [f.admin, f.acmeAuthor, f.globexAuthor, f.auditor, f.tracker, f.outsider, f.newAdmin].map((a) => a.address);
  const signers = [ACME_SIGNER.address, GLOBEX_SIGNER.address, NEW_SIGNER.address, ...accounts];
  const providerCount = Number(await registry.providerCount());
  const hardwareCount = Number(await registry.hardwareClassCount());
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  const componentIds = [...Object.values(COMPONENTS), componentId(NEW_COMPONENT)];
  const [providers, hardware, components, signerFlags, authors, roles] = await Promise.all([
    Promise.all(ids(providerCount).map((id) => providerView(registry, id).then((p) => p.map(String)))),
    Promise.all(ids(hardwareCount).map((id) => registry.hardwareClass(id))),
    Promise.all(
      componentIds.map((c) =>
        registry.component(c).then(
          (v) => v.map(String),
          () => "unregistered",
        ),
      ),
    ),
    Promise.all(ids(providerCount + 1).flatMap((id) => signers.map((s) => registry.isProviderSigner(id, s)))),
    Promise.all(accounts.map((a) => registry.authorProvider(a).then(String))),
    Promise.all(Object.values(ROLES).flatMap((role) => accounts.map((a) => registry.hasRole(role, a)))),
  ]);
  return { providerCount, hardwareCount, providers, hardware, components, signerFlags, authors, roles };
}

type RejectionCase = SharedRejectionCase<Fixture>;

/** One test per case: the call reverts with exactly that error and arguments, and changes nothing. */
function itRejects(cases: RejectionCase[], fixture: () => Promise<Fixture> = catalogFixture) {
  itRejectsWithoutChange(cases, { fixture, contract: (f) => f.registry, snapshot: catalogState });
}

describe("UpdateRegistry: catalog of providers, signers, authors, hardware and components", function () {
  describe("registerProvider", function () {
    it("numbers providers 1, 2, ... and emits ProviderRegistered with the id and name", async function () {
      const { registry, admin } = await loadFixture(deployRegistryFixture);
      const r = registry.connect(admin);
      expect(await r.providerCount()).to.equal(0n);

      expect(await r.registerProvider.staticCall("Acme Devices")).to.equal(1n);
      await expect(r.registerProvider("Acme Devices")).to.emit(registry, "ProviderRegistered").withArgs(1, "Acme Devices");
      expect(await r.registerProvider.staticCall("Globex")).to.equal(2n);
      await expect(r.registerProvider("Globex")).to.emit(registry, "ProviderRegistered").withArgs(2, "Globex");

      expect(await registry.providerCount()).to.equal(2n);
      expect(await providerView(registry, 1)).to.deep.equal(["Acme Devices", false]);
      expect(await providerView(registry, 2)).to.deep.equal(["Globex", false]);
    });

    it("accepts a name of exactly 64 bytes (the limit counts UTF-8 bytes, not characters)", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      await expect(registry.connect(admin).registerProvider(NAME_OF_64_BYTES)).to.emit(registry, "ProviderRegistered").withArgs(3, NAME_OF_64_BYTES);
      expect((await providerView(registry, 3)).name).to.equal(NAME_OF_64_BYTES);
    });

    itRejects([
      {
        name: "an empty provider name",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerProvider(""), error: "UpdateRegistryEmptyName", args: [] }),
      },
      {
        name: "a provider name over 64 bytes",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerProvider(LONG_NAME), error: "UpdateRegistryNameTooLong", args: [65, 64] }),
      },
      {
        name: "a provider name of 33 two-byte characters (66 bytes)",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerProvider("\u00e9".repeat(33)),
          error: "UpdateRegistryNameTooLong",
          args: [66, 64],
        }),
      },
      {
        name: "a provider name already taken",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerProvider("Acme Devices"),
          error: "UpdateRegistryProviderNameTaken",
          args: ["Acme Devices"],
        }),
      },
      {
        name: "a view of provider 0 (ids start at 1)",
        run: async (f) => ({ call: () => providerView(f.registry, 0), error: "UpdateRegistryUnknownProvider", args: [0] }),
      },
      {
        name: "a view of provider N+1 (one past the last id)",
        run: async (f) => ({ call: () => providerView(f.registry, 3), error: "UpdateRegistryUnknownProvider", args: [3] }),
      },
    ]);
  });

  describe("addProviderSigner and removeProviderSigner", function () {
    it("adds a signing key to one provider only and emits ProviderSignerAdded", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      expect(await registry.isProviderSigner(2, NEW_SIGNER.address)).to.equal(false);
      await expect(registry.connect(admin).addProviderSigner(2, NEW_SIGNER.address)).to.emit(registry, "ProviderSignerAdded").withArgs(2, NEW_SIGNER.address);
      expect(await registry.isProviderSigner(2, NEW_SIGNER.address)).to.equal(true);
      expect(await registry.isProviderSigner(1, NEW_SIGNER.address)).to.equal(false);
      // The provider's existing key is still there.
      expect(await registry.isProviderSigner(2, GLOBEX_SIGNER.address)).to.equal(true);
    });

    it("removes a signing key, emits ProviderSignerRemoved, and lets it be added again", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      await expect(registry.connect(admin).removeProviderSigner(1, ACME_SIGNER.address))
        .to.emit(registry, "ProviderSignerRemoved")
        .withArgs(1, ACME_SIGNER.address);
      expect(await registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(false);
      expect(await registry.isProviderSigner(2, GLOBEX_SIGNER.address)).to.equal(true);

      await expect(registry.connect(admin).addProviderSigner(1, ACME_SIGNER.address)).to.emit(registry, "ProviderSignerAdded").withArgs(1, ACME_SIGNER.address);
      expect(await registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(true);
    });

    itRejects([
      {
        name: "adding a signer to provider 0",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).addProviderSigner(0, NEW_SIGNER.address),
          error: "UpdateRegistryUnknownProvider",
          args: [0],
        }),
      },
      {
        name: "adding a signer to an unregistered provider",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).addProviderSigner(3, NEW_SIGNER.address),
          error: "UpdateRegistryUnknownProvider",
          args: [3],
        }),
      },
      {
        name: "adding the zero address as a signer",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).addProviderSigner(1, ZeroAddress), error: "UpdateRegistryZeroAddress", args: [] }),
      },
      {
        name: "adding a signer the provider already has",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).addProviderSigner(1, ACME_SIGNER.address),
          error: "UpdateRegistrySignerAlreadyAdded",
          args: [1, ACME_SIGNER.address],
        }),
      },
      {
        name: "removing a key that is not the provider's signer (another provider's key)",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).removeProviderSigner(1, GLOBEX_SIGNER.address),
          error: "UpdateRegistrySignerNotAuthorized",
          args: [1, GLOBEX_SIGNER.address],
        }),
      },
      {
        name: "removing a signer a second time",
        run: async (f) => {
          await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
          return {
            call: () => f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address),
            error: "UpdateRegistrySignerNotAuthorized",
            args: [1, ACME_SIGNER.address],
          };
        },
      },
      {
        // An unregistered provider has no signers, so the key is simply not one of its signers.
        name: "removing a signer of an unregistered provider",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).removeProviderSigner(3, ACME_SIGNER.address),
          error: "UpdateRegistrySignerNotAuthorized",
          args: [3, ACME_SIGNER.address],
        }),
      },
    ]);
  });

  describe("barProvider and unbarProvider (CAP-11.3-c)", function () {
    it("lets an administrator bar a provider; ProviderBarred names who barred it and why (CAP-11.3-c)", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      await expect(registry.connect(admin).barProvider(1, "signing key leaked"))
        .to.emit(registry, "ProviderBarred")
        .withArgs(1, admin.address, "signing key leaked");
      expect(await providerView(registry, 1)).to.deep.equal(["Acme Devices", true]);
      expect(await providerView(registry, 2)).to.deep.equal(["Globex", false]);
    });

    it("lets an auditor bar a provider; ProviderBarred names the auditor (CAP-11.3-c)", async function () {
      const { registry, auditor } = await loadFixture(catalogFixture);
      await expect(registry.connect(auditor).barProvider(2, "malicious image"))
        .to.emit(registry, "ProviderBarred")
        .withArgs(2, auditor.address, "malicious image");
      expect(await providerView(registry, 2)).to.deep.equal(["Globex", true]);
      expect(await providerView(registry, 1)).to.deep.equal(["Acme Devices", false]);
    });

    it("lets an administrator lift a bar (ProviderUnbarred names the administrator) and bar the provider again", async function () {
      const { registry, admin, auditor } = await loadFixture(catalogFixture);
      await registry.connect(auditor).barProvider(1, "malicious image");
      await expect(registry.connect(admin).unbarProvider(1)).to.emit(registry, "ProviderUnbarred").withArgs(1, admin.address);
      expect(await providerView(registry, 1)).to.deep.equal(["Acme Devices", false]);

      await expect(registry.connect(auditor).barProvider(1, "again")).to.emit(registry, "ProviderBarred").withArgs(1, auditor.address, "again");
      expect((await providerView(registry, 1)).barred).to.equal(true);
    });

    itRejects([
      {
        name: "barring provider 0",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).barProvider(0, "r"), error: "UpdateRegistryUnknownProvider", args: [0] }),
      },
      {
        name: "barring an unregistered provider",
        run: async (f) => ({ call: () => f.registry.connect(f.auditor).barProvider(3, "r"), error: "UpdateRegistryUnknownProvider", args: [3] }),
      },
      {
        name: "barring a provider that is already barred (CAP-11.3-c)",
        run: async (f) => {
          await f.registry.connect(f.admin).barProvider(1, "first");
          return { call: () => f.registry.connect(f.auditor).barProvider(1, "second"), error: "UpdateRegistryProviderBarred", args: [1] };
        },
      },
      {
        name: "lifting a bar from a provider that is not barred",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).unbarProvider(1), error: "UpdateRegistryProviderNotBarred", args: [1] }),
      },
      {
        name: "lifting a bar from provider 0",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).unbarProvider(0), error: "UpdateRegistryUnknownProvider", args: [0] }),
      },
      {
        name: "lifting a bar from an unregistered provider",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).unbarProvider(3), error: "UpdateRegistryUnknownProvider", args: [3] }),
      },
    ]);
  });

  describe("registerAuthor and removeAuthor (CAP-11.3-d)", function () {
    it("makes an account an author of one provider: AuthorRegistered and RoleGranted(AUTHOR_ROLE) (CAP-11.3-d)", async function () {
      const { registry, admin, outsider } = await loadFixture(catalogFixture);
      expect(await registry.authorProvider(outsider.address)).to.equal(0n);
      const tx = registry.connect(admin).registerAuthor(outsider.address, 2);
      await expect(tx).to.emit(registry, "AuthorRegistered").withArgs(outsider.address, 2);
      await expect(tx).to.emit(registry, "RoleGranted").withArgs(ROLES.AUTHOR, outsider.address, admin.address);
      expect(await registry.authorProvider(outsider.address)).to.equal(2n);
      expect(await registry.hasRole(ROLES.AUTHOR, outsider.address)).to.equal(true);
    });

    it("refuses to grant AUTHOR_ROLE without a provider: an author always belongs to one (CAP-11.3-d)", async function () {
      const { registry, admin, outsider } = await loadFixture(catalogFixture);
      await expect(registry.connect(admin).grantRole(ROLES.AUTHOR, outsider.address))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryAuthorNeedsProvider")
        .withArgs(outsider.address);
      expect(await registry.hasRole(ROLES.AUTHOR, outsider.address)).to.equal(false);
      expect(await registry.authorProvider(outsider.address)).to.equal(0n);
      // Other roles are granted as usual.
      await expect(registry.connect(admin).grantRole(ROLES.AUDITOR, outsider.address)).to.emit(registry, "RoleGranted");
    });

    it("removes an author: AuthorRemoved and RoleRevoked(AUTHOR_ROLE); other authors keep theirs (CAP-11.3-d)", async function () {
      const { registry, admin, acmeAuthor, globexAuthor } = await loadFixture(catalogFixture);
      const tx = registry.connect(admin).removeAuthor(acmeAuthor.address);
      await expect(tx).to.emit(registry, "AuthorRemoved").withArgs(acmeAuthor.address, 1);
      await expect(tx).to.emit(registry, "RoleRevoked").withArgs(ROLES.AUTHOR, acmeAuthor.address, admin.address);
      expect(await registry.authorProvider(acmeAuthor.address)).to.equal(0n);
      expect(await registry.hasRole(ROLES.AUTHOR, acmeAuthor.address)).to.equal(false);
      expect(await registry.authorProvider(globexAuthor.address)).to.equal(2n);
      expect(await registry.hasRole(ROLES.AUTHOR, globexAuthor.address)).to.equal(true);
    });

    it("lets a removed author be registered again, for another provider", async function () {
      const { registry, admin, acmeAuthor } = await loadFixture(catalogFixture);
      await registry.connect(admin).removeAuthor(acmeAuthor.address);
      await expect(registry.connect(admin).registerAuthor(acmeAuthor.address, 2)).to.emit(registry, "AuthorRegistered").withArgs(acmeAuthor.address, 2);
      expect(await registry.authorProvider(acmeAuthor.address)).to.equal(2n);
      expect(await registry.hasRole(ROLES.AUTHOR, acmeAuthor.address)).to.equal(true);
    });

    it("ends the provider membership when an administrator revokes AUTHOR_ROLE with revokeRole (CAP-11.3-d)", async function () {
      const { registry, admin, acmeAuthor } = await loadFixture(catalogFixture);
      const tx = registry.connect(admin).revokeRole(ROLES.AUTHOR, acmeAuthor.address);
      await expect(tx).to.emit(registry, "RoleRevoked").withArgs(ROLES.AUTHOR, acmeAuthor.address, admin.address);
      await expect(tx).to.emit(registry, "AuthorRemoved").withArgs(acmeAuthor.address, 1);
      expect(await registry.authorProvider(acmeAuthor.address)).to.equal(0n);
      expect(await registry.hasRole(ROLES.AUTHOR, acmeAuthor.address)).to.equal(false);
    });

    it("ends the provider membership when the author renounces AUTHOR_ROLE (CAP-11.3-d)", async function () {
      const { registry, acmeAuthor, globexAuthor } = await loadFixture(catalogFixture);
      const tx = registry.connect(acmeAuthor).renounceRole(ROLES.AUTHOR, acmeAuthor.address);
      await expect(tx).to.emit(registry, "RoleRevoked").withArgs(ROLES.AUTHOR, acmeAuthor.address, acmeAuthor.address);
      await expect(tx).to.emit(registry, "AuthorRemoved").withArgs(acmeAuthor.address, 1);
      expect(await registry.authorProvider(acmeAuthor.address)).to.equal(0n);
      expect(await registry.hasRole(ROLES.AUTHOR, acmeAuthor.address)).to.equal(false);
      expect(await registry.authorProvider(globexAuthor.address)).to.equal(2n);
    });

    it("keeps the provider membership when an author loses some other role", async function () {
      const { registry, admin, acmeAuthor } = await loadFixture(catalogFixture);
      await registry.connect(admin).grantRole(ROLES.AUDITOR, acmeAuthor.address);
      await expect(registry.connect(admin).revokeRole(ROLES.AUDITOR, acmeAuthor.address)).not.to.emit(registry, "AuthorRemoved");
      expect(await registry.authorProvider(acmeAuthor.address)).to.equal(1n);
      expect(await registry.hasRole(ROLES.AUTHOR, acmeAuthor.address)).to.equal(true);
    });

    it("emits nothing when AUTHOR_ROLE is revoked from an account that does not hold it", async function () {
      const { registry, admin, outsider } = await loadFixture(catalogFixture);
      const tx = registry.connect(admin).revokeRole(ROLES.AUTHOR, outsider.address);
      await expect(tx).not.to.emit(registry, "RoleRevoked");
      await expect(tx).not.to.emit(registry, "AuthorRemoved");
      expect(await registry.authorProvider(outsider.address)).to.equal(0n);
    });

    itRejects([
      {
        name: "an author of provider 0",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerAuthor(f.outsider.address, 0),
          error: "UpdateRegistryUnknownProvider",
          args: [0],
        }),
      },
      {
        name: "an author of an unregistered provider",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerAuthor(f.outsider.address, 3),
          error: "UpdateRegistryUnknownProvider",
          args: [3],
        }),
      },
      {
        name: "the zero address as an author",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerAuthor(ZeroAddress, 1), error: "UpdateRegistryZeroAddress", args: [] }),
      },
      {
        name: "registering an author of a provider again",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerAuthor(f.acmeAuthor.address, 1),
          error: "UpdateRegistryAuthorAlreadyRegistered",
          args: [f.acmeAuthor.address, 1],
        }),
      },
      {
        name: "registering an author of one provider for another (an account authors for one provider only)",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerAuthor(f.acmeAuthor.address, 2),
          error: "UpdateRegistryAuthorAlreadyRegistered",
          args: [f.acmeAuthor.address, 1],
        }),
      },
      {
        name: "removing an account that is not an author",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).removeAuthor(f.outsider.address),
          error: "UpdateRegistryNotAuthorOfProvider",
          args: [f.outsider.address, 0],
        }),
      },
      {
        name: "removing an account that holds another role but is not an author",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).removeAuthor(f.auditor.address),
          error: "UpdateRegistryNotAuthorOfProvider",
          args: [f.auditor.address, 0],
        }),
      },
      {
        name: "removing an author a second time",
        run: async (f) => {
          await f.registry.connect(f.admin).removeAuthor(f.acmeAuthor.address);
          return {
            call: () => f.registry.connect(f.admin).removeAuthor(f.acmeAuthor.address),
            error: "UpdateRegistryNotAuthorOfProvider",
            args: [f.acmeAuthor.address, 0],
          };
        },
      },
      {
        name: "revokeRole(AUTHOR_ROLE) by an account that is not an administrator (CAP-11.3-d)",
        run: async (f) => ({
          call: () => f.registry.connect(f.globexAuthor).revokeRole(ROLES.AUTHOR, f.acmeAuthor.address),
          error: "AccessControlUnauthorizedAccount",
          args: [f.globexAuthor.address, ROLES.ADMINISTRATOR],
        }),
      },
      {
        name: "renounceRole(AUTHOR_ROLE) on behalf of another author",
        run: async (f) => ({
          call: () => f.registry.connect(f.globexAuthor).renounceRole(ROLES.AUTHOR, f.acmeAuthor.address),
          error: "AccessControlBadConfirmation",
          args: [],
        }),
      },
    ]);
  });

  describe("registerHardwareClass", function () {
    it("numbers hardware classes 1, 2, ... and emits HardwareClassRegistered with the id and name", async function () {
      const { registry, admin } = await loadFixture(deployRegistryFixture);
      const r = registry.connect(admin);
      expect(await r.hardwareClassCount()).to.equal(0n);

      expect(await r.registerHardwareClass.staticCall("acme-board-rev-a")).to.equal(1n);
      await expect(r.registerHardwareClass("acme-board-rev-a")).to.emit(registry, "HardwareClassRegistered").withArgs(1, "acme-board-rev-a");
      expect(await r.registerHardwareClass.staticCall("globex-gateway")).to.equal(2n);
      await expect(r.registerHardwareClass("globex-gateway")).to.emit(registry, "HardwareClassRegistered").withArgs(2, "globex-gateway");

      expect(await registry.hardwareClassCount()).to.equal(2n);
      expect(await registry.hardwareClass(1)).to.equal("acme-board-rev-a");
      expect(await registry.hardwareClass(2)).to.equal("globex-gateway");
    });

    it("accepts a hardware class name of exactly 64 bytes", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      await expect(registry.connect(admin).registerHardwareClass(NAME_OF_64_BYTES)).to.emit(registry, "HardwareClassRegistered").withArgs(4, NAME_OF_64_BYTES);
      expect(await registry.hardwareClass(4)).to.equal(NAME_OF_64_BYTES);
    });

    it("rejects a hardware class once all 65535 ids are in use", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      // Registering 65535 classes takes too long; set the packed catalog counters instead
      // (provider count uint32 | hardware class count uint16 | component count uint32, low bits first).
      const packed = (hardware: bigint) => 2n | (hardware << 32n) | (4n << 48n);
      const address = await registry.getAddress();
      let slot = -1;
      for (let i = 0; i < 64 && slot < 0; i++) {
        if (BigInt(await ethers.provider.getStorage(address, i)) === packed(3n)) slot = i;
      }
      expect(slot, "storage slot of the catalog counters").to.be.greaterThanOrEqual(0);
      await network.provider.send("hardhat_setStorageAt", [address, toBeHex(slot), toBeHex(packed(0xffffn), 32)]);
      expect(await registry.hardwareClassCount()).to.equal(0xffffn);
      expect(await registry.providerCount()).to.equal(2n);

      await expect(registry.connect(admin).registerHardwareClass("one-too-many"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryHardwareClassLimitReached")
        .withArgs(0xffff);
      expect(await registry.hardwareClassCount()).to.equal(0xffffn);
      expect(BigInt(await ethers.provider.getStorage(address, slot))).to.equal(packed(0xffffn));
    });

    itRejects([
      {
        name: "an empty hardware class name",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerHardwareClass(""), error: "UpdateRegistryEmptyName", args: [] }),
      },
      {
        name: "a hardware class name over 64 bytes",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerHardwareClass(LONG_NAME), error: "UpdateRegistryNameTooLong", args: [65, 64] }),
      },
      {
        name: "a hardware class name already taken",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerHardwareClass("acme-board-rev-a"),
          error: "UpdateRegistryHardwareClassNameTaken",
          args: ["acme-board-rev-a"],
        }),
      },
      {
        name: "a view of hardware class 0 (ids start at 1)",
        run: async (f) => ({ call: () => f.registry.hardwareClass(0), error: "UpdateRegistryUnknownHardwareClass", args: [0] }),
      },
      {
        name: "a view of hardware class N+1 (one past the last id)",
        run: async (f) => ({ call: () => f.registry.hardwareClass(4), error: "UpdateRegistryUnknownHardwareClass", args: [4] }),
      },
    ]);
  });

  describe("registerComponent", function () {
    it("registers a component under keccak256(name), emits ComponentRegistered, and starts it with no releases", async function () {
      const { registry, admin } = await loadFixture(catalogFixture);
      const id = componentId(NEW_COMPONENT);
      expect(id).to.equal(keccak256(toUtf8Bytes(NEW_COMPONENT)));
      expect(await registry.connect(admin).registerComponent.staticCall(NEW_COMPONENT, 2)).to.equal(id);
      await expect(registry.connect(admin).registerComponent(NEW_COMPONENT, 2)).to.emit(registry, "ComponentRegistered").withArgs(id, 2, NEW_COMPONENT);
      expect(await registry.component(id)).to.deep.equal([NEW_COMPONENT, 2n, 0n, 0n]);
    });

    it("reports the fixture's components with their owners", async function () {
      const { registry } = await loadFixture(catalogFixture);
      expect(await registry.component(COMPONENTS.bootloader)).to.deep.equal(["acme.bootloader", 1n, 0n, 0n]);
      expect(await registry.component(COMPONENTS.globexApp)).to.deep.equal(["globex.app", 2n, 0n, 0n]);
    });

    itRejects([
      {
        name: "a component of provider 0",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerComponent(NEW_COMPONENT, 0), error: "UpdateRegistryUnknownProvider", args: [0] }),
      },
      {
        name: "a component of an unregistered provider",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerComponent(NEW_COMPONENT, 3), error: "UpdateRegistryUnknownProvider", args: [3] }),
      },
      {
        name: "a component name already registered",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerComponent("acme.bootloader", 1),
          error: "UpdateRegistryComponentExists",
          args: [COMPONENTS.bootloader],
        }),
      },
      {
        name: "a component name already registered by another provider",
        run: async (f) => ({
          call: () => f.registry.connect(f.admin).registerComponent("acme.bootloader", 2),
          error: "UpdateRegistryComponentExists",
          args: [COMPONENTS.bootloader],
        }),
      },
      {
        name: "an empty component name",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerComponent("", 1), error: "UpdateRegistryEmptyName", args: [] }),
      },
      {
        name: "a component name over 64 bytes",
        run: async (f) => ({ call: () => f.registry.connect(f.admin).registerComponent(LONG_NAME, 1), error: "UpdateRegistryNameTooLong", args: [65, 64] }),
      },
      {
        name: "a view of an unregistered component",
        run: async (f) => ({
          call: () => f.registry.component(componentId(NEW_COMPONENT)),
          error: "UpdateRegistryUnknownComponent",
          args: [componentId(NEW_COMPONENT)],
        }),
      },
    ]);
  });

  describe("access control: only administrators run the catalog (auditors may also bar)", function () {
    type Caller = "acmeAuthor" | "auditor" | "tracker" | "outsider";
    interface Restricted {
      fn: string;
      /** Makes the call succeed for an administrator (so only the role is missing). */
      setup?: (f: Fixture) => Promise<unknown>;
      call: (r: UpdateRegistry, f: Fixture) => Promise<unknown>;
    }
    /** Accounts without ADMINISTRATOR_ROLE: an author, an auditor, a tracker and an outsider. */
    const nonAdministrators: Caller[] = ["acmeAuthor", "auditor", "tracker", "outsider"];
    const administratorOnly: Restricted[] = [
      { fn: "registerProvider", call: (r) => r.registerProvider("Initech") },
      { fn: "addProviderSigner", call: (r) => r.addProviderSigner(1, NEW_SIGNER.address) },
      { fn: "removeProviderSigner", call: (r) => r.removeProviderSigner(1, ACME_SIGNER.address) },
      {
        fn: "unbarProvider",
        setup: (f) => f.registry.connect(f.auditor).barProvider(1, "malicious image"),
        call: (r) => r.unbarProvider(1),
      },
      { fn: "registerAuthor", call: (r, f) => r.registerAuthor(f.outsider.address, 1) },
      { fn: "removeAuthor", call: (r, f) => r.removeAuthor(f.acmeAuthor.address) },
      { fn: "registerHardwareClass", call: (r) => r.registerHardwareClass("initech-board") },
      { fn: "registerComponent", call: (r) => r.registerComponent(NEW_COMPONENT, 2) },
    ];

    it("accepts each of these calls from an administrator (so below only the missing role makes them fail)", async function () {
      for (const { fn, setup, call } of administratorOnly) {
        const f = await loadFixture(catalogFixture);
        if (setup) await setup(f);
        await expect(call(f.registry.connect(f.admin), f), fn).not.to.be.reverted;
      }
    });

    for (const { fn, setup, call } of administratorOnly) {
      for (const caller of nonAdministrators) {
        it(`rejects ${fn} from an account without ADMINISTRATOR_ROLE (${caller}) with AccessControlUnauthorizedAccount`, async function () {
          const f = await loadFixture(catalogFixture);
          if (setup) await setup(f);
          const before = await catalogState(f);
          const account = f[caller];
          await expect(call(f.registry.connect(account), f))
            .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
            .withArgs(account.address, ROLES.ADMINISTRATOR);
          expect(await catalogState(f)).to.deep.equal(before);
        });
      }
    }

    for (const caller of ["acmeAuthor", "tracker", "outsider"] as const) {
      it(`rejects barProvider from an account that is neither administrator nor auditor (${caller}) with UpdateRegistryUnauthorized (CAP-11.3-c)`, async function () {
        const f = await loadFixture(catalogFixture);
        const before = await catalogState(f);
        const account = f[caller];
        await expect(f.registry.connect(account).barProvider(1, "not mine to bar"))
          .to.be.revertedWithCustomError(f.registry, "UpdateRegistryUnauthorized")
          .withArgs(account.address, ROLES.ADMINISTRATOR, ROLES.AUDITOR);
        expect(await catalogState(f)).to.deep.equal(before);
      });
    }

    it("lets an administrator other than the deployer run the catalog", async function () {
      const { registry, admin, newAdmin } = await loadFixture(catalogFixture);
      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, newAdmin.address);
      const r = registry.connect(newAdmin);
      await expect(r.registerProvider("Initech")).to.emit(registry, "ProviderRegistered").withArgs(3, "Initech");
      await expect(r.barProvider(3, "test")).to.emit(registry, "ProviderBarred").withArgs(3, newAdmin.address, "test");
      await expect(r.unbarProvider(3)).to.emit(registry, "ProviderUnbarred").withArgs(3, newAdmin.address);
      await expect(r.registerComponent(NEW_COMPONENT, 3)).to.emit(registry, "ComponentRegistered").withArgs(componentId(NEW_COMPONENT), 3, NEW_COMPONENT);
    });
  });
});
