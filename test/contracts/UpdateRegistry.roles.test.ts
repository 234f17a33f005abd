import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, id as hashOf } from "ethers";
import { deployRegistryFixture, ADMIN_DELAY, ROLES } from "../helpers/registryFixture";
import { itRejectsWithoutChange, RejectionCase } from "../helpers/itRejects";

type Fixture = Awaited<ReturnType<typeof deployRegistryFixture>>;

/** Who holds what: the default admin, a pending transfer, and every role of every test account. */
async function roleState(f: Fixture) {
  const { registry } = f;
  const accounts = [f.admin, f.acmeAuthor, f.globexAuthor, f.auditor, f.tracker, f.outsider, f.newAdmin].map((a) => a.address);
  const [defaultAdmin, pending, delay, roles] = await Promise.all([
    registry.defaultAdmin(),
    registry.pendingDefaultAdmin().then((p) => p.map(String)),
    registry.defaultAdminDelay(),
    Promise.all(Object.values(ROLES).flatMap((role) => accounts.map((a) => registry.hasRole(role, a)))),
  ]);
  return { defaultAdmin, pending, delay, roles };
}

/** A deployment where the default admin has scheduled a transfer to `newAdmin`. */
async function transferScheduledFixture() {
  const f = await deployRegistryFixture();
  await f.registry.connect(f.admin).beginDefaultAdminTransfer(f.newAdmin.address);
  const [, schedule] = await f.registry.pendingDefaultAdmin();
  return { ...f, schedule };
}

describe("UpdateRegistry: roles and the default-admin transfer", function () {
  describe("role structure", function () {
    it("makes the deployer the default admin (and owner) and an administrator, and nobody else anything", async function () {
      const f = await loadFixture(deployRegistryFixture);
      const { registry, admin } = f;
      expect(await registry.defaultAdmin()).to.equal(admin.address);
      expect(await registry.owner()).to.equal(admin.address);
      expect(await registry.hasRole(ROLES.DEFAULT_ADMIN, admin.address)).to.equal(true);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, admin.address)).to.equal(true);
      expect(await registry.defaultAdminDelay()).to.equal(BigInt(ADMIN_DELAY));
      expect(await registry.pendingDefaultAdmin()).to.deep.equal([ZeroAddress, 0n]);
      for (const account of [f.acmeAuthor, f.globexAuthor, f.auditor, f.tracker, f.outsider, f.newAdmin]) {
        for (const role of Object.values(ROLES)) expect(await registry.hasRole(role, account.address)).to.equal(false);
      }
    });

    it("publishes the role ids as keccak256 of their names", async function () {
      const { registry } = await loadFixture(deployRegistryFixture);
      expect(await registry.DEFAULT_ADMIN_ROLE()).to.equal(ROLES.DEFAULT_ADMIN);
      expect(await registry.ADMINISTRATOR_ROLE()).to.equal(ROLES.ADMINISTRATOR);
      expect(await registry.AUTHOR_ROLE()).to.equal(ROLES.AUTHOR);
      expect(await registry.AUDITOR_ROLE()).to.equal(ROLES.AUDITOR);
      expect(await registry.TRACKER_ROLE()).to.equal(ROLES.TRACKER);
    });

    it("makes DEFAULT_ADMIN_ROLE the admin of ADMINISTRATOR_ROLE, and ADMINISTRATOR_ROLE the admin of AUTHOR, AUDITOR and TRACKER", async function () {
      const { registry } = await loadFixture(deployRegistryFixture);
      expect(await registry.getRoleAdmin(ROLES.DEFAULT_ADMIN)).to.equal(ROLES.DEFAULT_ADMIN);
      expect(await registry.getRoleAdmin(ROLES.ADMINISTRATOR)).to.equal(ROLES.DEFAULT_ADMIN);
      expect(await registry.getRoleAdmin(ROLES.AUTHOR)).to.equal(ROLES.ADMINISTRATOR);
      expect(await registry.getRoleAdmin(ROLES.AUDITOR)).to.equal(ROLES.ADMINISTRATOR);
      expect(await registry.getRoleAdmin(ROLES.TRACKER)).to.equal(ROLES.ADMINISTRATOR);
    });

    it("lets the default admin grant and revoke ADMINISTRATOR_ROLE", async function () {
      const { registry, admin, newAdmin } = await loadFixture(deployRegistryFixture);
      await expect(registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, newAdmin.address))
        .to.emit(registry, "RoleGranted")
        .withArgs(ROLES.ADMINISTRATOR, newAdmin.address, admin.address);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, newAdmin.address)).to.equal(true);
      await expect(registry.connect(admin).revokeRole(ROLES.ADMINISTRATOR, newAdmin.address))
        .to.emit(registry, "RoleRevoked")
        .withArgs(ROLES.ADMINISTRATOR, newAdmin.address, admin.address);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, newAdmin.address)).to.equal(false);
    });

    it("lets an administrator who is not the default admin grant and revoke the auditor and tracker roles", async function () {
      const { registry, admin, newAdmin, auditor, tracker } = await loadFixture(deployRegistryFixture);
      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, newAdmin.address);
      const r = registry.connect(newAdmin);
      await expect(r.grantRole(ROLES.AUDITOR, auditor.address)).to.emit(registry, "RoleGranted").withArgs(ROLES.AUDITOR, auditor.address, newAdmin.address);
      await expect(r.grantRole(ROLES.TRACKER, tracker.address)).to.emit(registry, "RoleGranted").withArgs(ROLES.TRACKER, tracker.address, newAdmin.address);
      expect(await registry.hasRole(ROLES.AUDITOR, auditor.address)).to.equal(true);
      expect(await registry.hasRole(ROLES.TRACKER, tracker.address)).to.equal(true);

      await expect(r.revokeRole(ROLES.AUDITOR, auditor.address)).to.emit(registry, "RoleRevoked").withArgs(ROLES.AUDITOR, auditor.address, newAdmin.address);
      await expect(r.revokeRole(ROLES.TRACKER, tracker.address)).to.emit(registry, "RoleRevoked").withArgs(ROLES.TRACKER, tracker.address, newAdmin.address);
      expect(await registry.hasRole(ROLES.AUDITOR, auditor.address)).to.equal(false);
      expect(await registry.hasRole(ROLES.TRACKER, tracker.address)).to.equal(false);
    });

    describe("rejections: each with its own error and no change to any role", function () {
      type Case = RejectionCase<Fixture>;
      const cases: Case[] = [
        {
          name: "an outsider granting the auditor role",
          run: async (f) => ({
            call: () => f.registry.connect(f.outsider).grantRole(ROLES.AUDITOR, f.auditor.address),
            error: "AccessControlUnauthorizedAccount",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "an outsider granting the tracker role",
          run: async (f) => ({
            call: () => f.registry.connect(f.outsider).grantRole(ROLES.TRACKER, f.tracker.address),
            error: "AccessControlUnauthorizedAccount",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "an outsider granting itself the author role (CAP-11.3-d)",
          run: async (f) => ({
            call: () => f.registry.connect(f.outsider).grantRole(ROLES.AUTHOR, f.outsider.address),
            error: "AccessControlUnauthorizedAccount",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "an auditor granting the auditor role (only administrators grant it)",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.AUDITOR, f.auditor.address);
            return {
              call: () => f.registry.connect(f.auditor).grantRole(ROLES.AUDITOR, f.outsider.address),
              error: "AccessControlUnauthorizedAccount",
              args: [f.auditor.address, ROLES.ADMINISTRATOR],
            };
          },
        },
        {
          name: "an outsider revoking the tracker role",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.TRACKER, f.tracker.address);
            return {
              call: () => f.registry.connect(f.outsider).revokeRole(ROLES.TRACKER, f.tracker.address),
              error: "AccessControlUnauthorizedAccount",
              args: [f.outsider.address, ROLES.ADMINISTRATOR],
            };
          },
        },
        {
          name: "an administrator who is not the default admin granting ADMINISTRATOR_ROLE",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.ADMINISTRATOR, f.newAdmin.address);
            return {
              call: () => f.registry.connect(f.newAdmin).grantRole(ROLES.ADMINISTRATOR, f.outsider.address),
              error: "AccessControlUnauthorizedAccount",
              args: [f.newAdmin.address, ROLES.DEFAULT_ADMIN],
            };
          },
        },
        {
          name: "an administrator who is not the default admin revoking the deployer's ADMINISTRATOR_ROLE",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.ADMINISTRATOR, f.newAdmin.address);
            return {
              call: () => f.registry.connect(f.newAdmin).revokeRole(ROLES.ADMINISTRATOR, f.admin.address),
              error: "AccessControlUnauthorizedAccount",
              args: [f.newAdmin.address, ROLES.DEFAULT_ADMIN],
            };
          },
        },
        {
          name: "granting DEFAULT_ADMIN_ROLE directly (it moves only by the two-step transfer)",
          run: async (f) => ({
            call: () => f.registry.connect(f.admin).grantRole(ROLES.DEFAULT_ADMIN, f.newAdmin.address),
            error: "AccessControlEnforcedDefaultAdminRules",
            args: [],
          }),
        },
        {
          name: "revoking DEFAULT_ADMIN_ROLE directly",
          run: async (f) => ({
            call: () => f.registry.connect(f.admin).revokeRole(ROLES.DEFAULT_ADMIN, f.admin.address),
            error: "AccessControlEnforcedDefaultAdminRules",
            args: [],
          }),
        },
        {
          name: "the default admin renouncing DEFAULT_ADMIN_ROLE without a scheduled, elapsed renouncement",
          run: async (f) => ({
            call: () => f.registry.connect(f.admin).renounceRole(ROLES.DEFAULT_ADMIN, f.admin.address),
            error: "AccessControlEnforcedDefaultAdminDelay",
            args: [0],
          }),
        },
        {
          name: "an administrator beginning a default-admin transfer (only the default admin may)",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.ADMINISTRATOR, f.newAdmin.address);
            return {
              call: () => f.registry.connect(f.newAdmin).beginDefaultAdminTransfer(f.newAdmin.address),
              error: "AccessControlUnauthorizedAccount",
              args: [f.newAdmin.address, ROLES.DEFAULT_ADMIN],
            };
          },
        },
        {
          name: "an outsider beginning a default-admin transfer to itself",
          run: async (f) => ({
            call: () => f.registry.connect(f.outsider).beginDefaultAdminTransfer(f.outsider.address),
            error: "AccessControlUnauthorizedAccount",
            args: [f.outsider.address, ROLES.DEFAULT_ADMIN],
          }),
        },
        {
          name: "accepting a default-admin transfer that was never begun",
          run: async (f) => ({
            call: () => f.registry.connect(f.newAdmin).acceptDefaultAdminTransfer(),
            error: "AccessControlInvalidDefaultAdmin",
            args: [f.newAdmin.address],
          }),
        },
      ];

      itRejectsWithoutChange(cases, { fixture: deployRegistryFixture, contract: (f) => f.registry, snapshot: roleState });
    });
  });

  describe("safe default-admin transfer (AccessControlDefaultAdminRules)", function () {
    it("schedules a transfer: DefaultAdminTransferScheduled with the time it may be accepted (now + ADMIN_DELAY)", async function () {
      const { registry, admin, newAdmin } = await loadFixture(deployRegistryFixture);
      const tx = registry.connect(admin).beginDefaultAdminTransfer(newAdmin.address);
      const receipt = await (await tx).wait();
      const { timestamp } = (await receipt!.getBlock())!;
      const schedule = BigInt(timestamp + ADMIN_DELAY);
      await expect(tx).to.emit(registry, "DefaultAdminTransferScheduled").withArgs(newAdmin.address, schedule);
      expect(await registry.pendingDefaultAdmin()).to.deep.equal([newAdmin.address, schedule]);
      // Nothing has moved yet.
      expect(await registry.defaultAdmin()).to.equal(admin.address);
      expect(await registry.hasRole(ROLES.DEFAULT_ADMIN, newAdmin.address)).to.equal(false);
    });

    it("rejects acceptance before the delay has passed, up to and including the scheduled second", async function () {
      const f = await loadFixture(transferScheduledFixture);
      const before = await roleState(f);
      await expect(f.registry.connect(f.newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(f.registry, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(f.schedule);
      expect(await roleState(f)).to.deep.equal(before);

      await time.setNextBlockTimestamp(f.schedule);
      await expect(f.registry.connect(f.newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(f.registry, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(f.schedule);
      expect(await roleState(f)).to.deep.equal(before);
    });

    it("rejects acceptance by anyone but the pending admin, even after the delay", async function () {
      const f = await loadFixture(transferScheduledFixture);
      await time.increase(ADMIN_DELAY);
      const before = await roleState(f);
      for (const caller of [f.outsider, f.admin]) {
        await expect(f.registry.connect(caller).acceptDefaultAdminTransfer())
          .to.be.revertedWithCustomError(f.registry, "AccessControlInvalidDefaultAdmin")
          .withArgs(caller.address);
      }
      expect(await roleState(f)).to.deep.equal(before);
    });

    it("hands DEFAULT_ADMIN_ROLE to the new admin once the delay has passed; the old admin loses it", async function () {
      const { registry, admin, newAdmin, outsider } = await loadFixture(transferScheduledFixture);
      await time.increase(ADMIN_DELAY);
      const tx = registry.connect(newAdmin).acceptDefaultAdminTransfer();
      await expect(tx).to.emit(registry, "RoleRevoked").withArgs(ROLES.DEFAULT_ADMIN, admin.address, newAdmin.address);
      await expect(tx).to.emit(registry, "RoleGranted").withArgs(ROLES.DEFAULT_ADMIN, newAdmin.address, newAdmin.address);

      expect(await registry.defaultAdmin()).to.equal(newAdmin.address);
      expect(await registry.owner()).to.equal(newAdmin.address);
      expect(await registry.hasRole(ROLES.DEFAULT_ADMIN, newAdmin.address)).to.equal(true);
      expect(await registry.hasRole(ROLES.DEFAULT_ADMIN, admin.address)).to.equal(false);
      expect(await registry.pendingDefaultAdmin()).to.deep.equal([ZeroAddress, 0n]);

      // The old admin can no longer govern the administrator role; the new one can.
      await expect(registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, outsider.address))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, ROLES.DEFAULT_ADMIN);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, outsider.address)).to.equal(false);
      await expect(registry.connect(newAdmin).grantRole(ROLES.ADMINISTRATOR, outsider.address))
        .to.emit(registry, "RoleGranted")
        .withArgs(ROLES.ADMINISTRATOR, outsider.address, newAdmin.address);
    });

    it("moves ADMINISTRATOR_ROLE with the default admin: the old key keeps no power at all", async function () {
      const { registry, fleet, admin, newAdmin } = await loadFixture(transferScheduledFixture);
      await time.increase(ADMIN_DELAY);
      const tx = registry.connect(newAdmin).acceptDefaultAdminTransfer();
      await expect(tx).to.emit(registry, "RoleRevoked").withArgs(ROLES.ADMINISTRATOR, admin.address, newAdmin.address);
      await expect(tx).to.emit(registry, "RoleGranted").withArgs(ROLES.ADMINISTRATOR, newAdmin.address, newAdmin.address);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, admin.address)).to.equal(false);
      expect(await registry.hasRole(ROLES.ADMINISTRATOR, newAdmin.address)).to.equal(true);
      // Not in the fleet registry either, which takes its roles from here.
      await expect(fleet.connect(admin).enrolDeviceBatch(hashOf("root"), 1, ""))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(admin.address, ROLES.ADMINISTRATOR);
      await expect(registry.connect(admin).registerProvider("Acme Devices"))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, ROLES.ADMINISTRATOR);
    });

    it("cancels a scheduled transfer: DefaultAdminTransferCanceled, and the would-be admin can no longer accept", async function () {
      const f = await loadFixture(transferScheduledFixture);
      const { registry, admin, newAdmin } = f;
      await expect(registry.connect(admin).cancelDefaultAdminTransfer()).to.emit(registry, "DefaultAdminTransferCanceled");
      expect(await registry.pendingDefaultAdmin()).to.deep.equal([ZeroAddress, 0n]);

      await time.increase(ADMIN_DELAY);
      const before = await roleState(f);
      await expect(registry.connect(newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(registry, "AccessControlInvalidDefaultAdmin")
        .withArgs(newAdmin.address);
      expect(await roleState(f)).to.deep.equal(before);
      expect(await registry.defaultAdmin()).to.equal(admin.address);
    });

    it("rejects cancelling a transfer from anyone but the default admin, and keeps it scheduled", async function () {
      const f = await loadFixture(transferScheduledFixture);
      const before = await roleState(f);
      for (const caller of [f.newAdmin, f.outsider]) {
        await expect(f.registry.connect(caller).cancelDefaultAdminTransfer())
          .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, ROLES.DEFAULT_ADMIN);
      }
      expect(await roleState(f)).to.deep.equal(before);
      expect(await f.registry.pendingDefaultAdmin()).to.deep.equal([f.newAdmin.address, f.schedule]);
    });

    it("replaces a scheduled transfer when the default admin begins another (the first is canceled)", async function () {
      const { registry, admin, newAdmin, outsider } = await loadFixture(transferScheduledFixture);
      const tx = registry.connect(admin).beginDefaultAdminTransfer(outsider.address);
      await expect(tx).to.emit(registry, "DefaultAdminTransferCanceled");
      await expect(tx).to.emit(registry, "DefaultAdminTransferScheduled");
      await time.increase(ADMIN_DELAY);
      await expect(registry.connect(newAdmin).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(registry, "AccessControlInvalidDefaultAdmin")
        .withArgs(newAdmin.address);
      await registry.connect(outsider).acceptDefaultAdminTransfer();
      expect(await registry.defaultAdmin()).to.equal(outsider.address);
    });
  });
});
