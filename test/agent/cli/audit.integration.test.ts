import { expect } from "chai";
import { policyChain, type PolicyChain } from "./cliHarness";

/**
 * The auditors' and administrators' commands on a real chain: reading a release's whole ledger
 * record (APP-II-1), revoking and flagging it (CAP-11.3-c, REQ-10b-ii), and the roles that allow
 * it (CAP-11.3-d), with the default admin's two-step handover.
 */
describe("ota-ledger release show|list|revoke|flag and role (CAP-11.3-c, REQ-10b-ii, CAP-11.3-d)", function () {
  this.timeout(120_000);
  let c: PolicyChain;
  const asOutsider = () => ({ OTA_PRIVATE_KEY: c.outsider.privateKey });

  before(async () => {
    c = await policyChain();
  });
  after(async () => {
    await c?.stop();
  });

  describe("release show and list", () => {
    let first: string;
    let second: string;
    before(async () => {
      first = await c.publish("1.0.0");
      second = await c.publish("1.1.0");
    });

    it("APP-II-1: show prints every Table II-1 field of the ledger record and its status", async () => {
      const r = await c.run(["release", "show", first, "--json"]);
      expect(r.code, r.stderr).to.equal(0);
      const release = r.json().release;
      expect(release).to.include({ id: first, status: "active", version: "1.0.0", fileName: "image.bin", fileSize: 10 });
      expect(release.provider).to.deep.equal({ id: 1, name: "Acme" });
      expect(release.component).to.deep.equal({ id: c.component, name: "acme.bootloader" });
      expect(release.fileLink).to.equal("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
      expect(release.fileHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(release.merkleRoot).to.match(/^0x[0-9a-f]{64}$/);
      expect(release.hardware).to.deep.equal([{ id: 1, name: "rev-a" }]);
      expect(release.dependencies).to.deep.equal([]);
      expect(Date.parse(release.releasedAt)).to.be.greaterThan(0);
      expect(release.signer).to.equal(c.admin.address);
      const human = await c.run(["release", "show", first]);
      for (const label of ["provider", "released at", "version", "file hash", "file link", "file name", "file size", "hardware", "depends on", "merkle root"]) {
        expect(human.stdout).to.match(new RegExp(`^  ${label} `, "m"));
      }
    });

    it("list prints a component's releases oldest first", async () => {
      const r = await c.run(["release", "list", "--component", "acme.bootloader", "--json"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.json().releases.map((x: { id: string; version: string }) => [x.id, x.version])).to.deep.equal([
        [first, "1.0.0"],
        [second, "1.1.0"],
      ]);
    });

    it("refuses an unknown release and an unknown component, saying how to find the right one", async () => {
      const unknown = "0x" + "ab".repeat(32);
      const show = await c.run(["release", "show", unknown, "--json"]);
      expect(show.code).to.equal(2);
      expect(show.json().error.code).to.equal("UNKNOWN_RELEASE");
      const list = await c.run(["release", "list", "--component", "acme.nothing", "--json"]);
      expect(list.code).to.equal(2);
      expect(list.json().error.code).to.equal("UNKNOWN_COMPONENT");
      expect(list.json().error.message).to.include('"acme.nothing"');
    });
  });

  describe("revoke and flag", () => {
    it("CAP-11.3-d: refuses an account that is neither auditor nor administrator, before sending", async () => {
      const id = await c.publish("2.0.0");
      const error = await c.refuses(
        ["release", "revoke", id, "--reason", "malware"],
        1,
        "NOT_AUDITOR",
        /neither AUDITOR_ROLE nor ADMINISTRATOR_ROLE.*role grant auditor/,
        asOutsider(),
      );
      expect(error.details.account).to.equal(c.outsider.address);
      await c.refuses(["release", "flag", id, "--advisory", "CVE-2026-1"], 1, "NOT_AUDITOR", /may not flag/, asOutsider());
      expect(await c.registry.releaseStatus(id)).to.equal(1n);
    });

    it("REQ-10b-ii: an auditor flags a release vulnerable; show says by whom and the advisory; twice is refused", async () => {
      const id = await c.publish("2.1.0");
      expect((await c.run(["role", "grant", "auditor", c.outsider.address])).code).to.equal(0);
      const r = await c.run(["release", "flag", id, "--advisory", "CVE-2026-1234", "--json"], asOutsider());
      expect(r.code, r.stderr).to.equal(0);
      expect(r.json()).to.include({ releaseId: id, status: "vulnerable", advisory: "CVE-2026-1234" });
      const shown = (await c.run(["release", "show", id, "--json"])).json().release;
      expect(shown.status).to.equal("vulnerable");
      expect(shown.vulnerable).to.deep.equal({ by: c.outsider.address, advisory: "CVE-2026-1234" });
      await c.refuses(["release", "flag", id, "--advisory", "again"], 2, "RELEASE_ALREADY_VULNERABLE", /already vulnerable/, asOutsider());
    });

    it("CAP-11.3-c: an administrator revokes a release for good; revoking or flagging it again is refused; an empty reason too", async () => {
      const id = await c.publish("2.2.0");
      await c.refuses(["release", "revoke", id, "--reason", "  "], 2, "INVALID_INPUT", /reason is empty/);
      const r = await c.run(["release", "revoke", id, "--reason", "malware found in the image", "--json"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(await c.registry.releaseStatus(id)).to.equal(3n);
      const shown = (await c.run(["release", "show", id, "--json"])).json().release;
      expect(shown.status).to.equal("revoked");
      expect(shown.revoked).to.deep.equal({ by: c.admin.address, reason: "malware found in the image" });
      expect((await c.run(["release", "show", id])).stdout).to.match(/revoked +by 0x[0-9a-fA-F]{40}: malware found in the image/);
      await c.refuses(["release", "revoke", id, "--reason", "again"], 2, "RELEASE_ALREADY_REVOKED", /already revoked/);
      await c.refuses(["release", "flag", id, "--advisory", "CVE-1"], 2, "RELEASE_ALREADY_REVOKED", /cannot be flagged/);
    });
  });

  describe("roles", () => {
    it("CAP-11.3-d: grant, show and revoke a role; nothing is sent when there is nothing to do", async () => {
      const account = "0x00000000000000000000000000000000000000a1";
      expect((await c.run(["role", "grant", "tracker", account])).code).to.equal(0);
      expect((await c.run(["role", "show", account, "--json"])).json().roles).to.deep.equal(["TRACKER_ROLE"]);
      const before = await c.blockNumber();
      const again = await c.run(["role", "grant", "tracker", account, "--json"]);
      expect(again.json()).to.include({ granted: false, alreadyHeld: true });
      expect(await c.blockNumber()).to.equal(before);
      expect((await c.run(["role", "revoke", "tracker", account])).code).to.equal(0);
      expect((await c.run(["role", "show", account, "--json"])).json().roles).to.deep.equal([]);
      expect((await c.run(["role", "revoke", "tracker", account, "--json"])).json()).to.include({ revoked: false, held: false });
      const admin = (await c.run(["role", "show", c.admin.address, "--json"])).json();
      expect(admin.roles).to.deep.equal(["DEFAULT_ADMIN", "ADMINISTRATOR_ROLE", "AUTHOR_ROLE"]);
      expect(admin.authorOf).to.equal(1);
    });

    it("refuses an unknown role, the author role (made per provider) and a sender that may not grant it, before sending", async () => {
      await c.refuses(["role", "grant", "superuser", c.outsider.address], 2, "INVALID_INPUT", /not a role; choose one of administrator, auditor, tracker/);
      await c.refuses(["role", "grant", "author", c.outsider.address], 2, "INVALID_INPUT", /provider author add/);
      await c.refuses(
        ["role", "grant", "tracker", "0x00000000000000000000000000000000000000b2"],
        1,
        "NOT_ROLE_ADMIN",
        /only an administrator may/,
        asOutsider(),
      );
      // The outsider is an auditor (granted above) but not the default admin, which alone grants administrators.
      await c.refuses(["role", "grant", "administrator", c.outsider.address], 1, "NOT_ROLE_ADMIN", /only the default admin may/, asOutsider());
    });

    it("hands the default admin over in two steps after the delay; the administrator role moves with it", async () => {
      const shown = (await c.run(["role", "admin", "show", "--json"])).json();
      expect(shown).to.deep.include({ defaultAdmin: c.admin.address, delaySeconds: 3 * 24 * 3600, pending: null });
      await c.refuses(["role", "admin", "transfer", c.outsider.address], 1, "NOT_DEFAULT_ADMIN", /only the default admin/, asOutsider());
      await c.refuses(["role", "admin", "accept"], 1, "NOT_PENDING_ADMIN", /no handover/, asOutsider());
      expect((await c.run(["role", "admin", "transfer", c.outsider.address])).code).to.equal(0);
      expect((await c.run(["role", "admin", "show", "--json"])).json().pending.to).to.equal(c.outsider.address);
      await c.refuses(["role", "admin", "accept"], 1, "NOT_PENDING_ADMIN", new RegExp(`handover is to ${c.outsider.address}`));
      await c.refuses(["role", "admin", "accept"], 1, "HANDOVER_NOT_DUE", /may be accepted after/, asOutsider());
      // The handover is cancelled and started again: it is the last one that counts.
      expect((await c.run(["role", "admin", "cancel", "--json"])).json()).to.include({ cancelled: true });
      expect((await c.run(["role", "admin", "transfer", c.outsider.address])).code).to.equal(0);
      await c.provider.send("evm_increaseTime", [3 * 24 * 3600 + 1]);
      await c.provider.send("evm_mine", []);
      const accepted = await c.run(["role", "admin", "accept"], asOutsider());
      expect(accepted.code, accepted.stderr).to.equal(0);
      expect(await c.registry.defaultAdmin()).to.equal(c.outsider.address);
      const roles = (await c.run(["role", "show", c.admin.address, "--json"])).json().roles;
      expect(roles, "the old admin keeps no power over the registry").to.not.include.members(["DEFAULT_ADMIN", "ADMINISTRATOR_ROLE"]);
      expect((await c.run(["role", "show", c.outsider.address, "--json"])).json().roles).to.include.members(["DEFAULT_ADMIN", "ADMINISTRATOR_ROLE"]);
    });
  });
});
