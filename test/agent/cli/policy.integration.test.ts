import { expect } from "chai";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, ZeroAddress, ZeroHash, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { loadDeviceConfig } from "../../../agent/consumer/deviceConfig";
import { buildCohort, encodeListedEvidence } from "../../../agent/crypto/cohortTree";
import { splitEvidence } from "../../../agent/core/policyEvidence";
import { enrolTestDevice, policyChain, startCliChain, type CliChain, type PolicyChain } from "./cliHarness";
import { formatWeekdays, parseWeekdays, parseWindow } from "../../../agent/cli/parse";
import {
  AllOfPolicy__factory,
  ApprovalPolicy__factory,
  LocationPolicy__factory,
  MaintenanceWindowPolicy__factory,
  PolicyMockReverting__factory,
  PolicyMockStrict__factory,
  AllowlistSoakPolicy__factory,
} from "../../../typechain-types";

describe("ota-ledger policy (administrators' update policies)", function () {
  this.timeout(120_000);
  let c: PolicyChain;
  let releaseId: string;

  before(async () => {
    c = await policyChain();
    releaseId = await c.publish("1.0.0");
  });
  after(async () => {
    await c?.stop();
  });

  const refuses = (...args: Parameters<PolicyChain["refuses"]>) => c.refuses(...args);
  const deploy = async (...args: string[]): Promise<string> => {
    const r = await c.run(["policy", "deploy", ...args, "--json"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    return r.json().policy.address;
  };

  describe("policy deploy", () => {
    it("deploys each shipped kind with the configured account and prints its address, kind and transaction", async () => {
      const r = await c.run(["policy", "deploy", "staged-rollout", "--json"]);
      expect(r.code, r.stderr).to.equal(0);
      const out = r.json();
      expect(out.policy.kind).to.equal("staged-rollout");
      expect(out.tx.gasUsed).to.be.above(0);
      expect(await c.provider.getCode(out.policy.address)).to.not.equal("0x");
      const human = await c.run(["policy", "deploy", "location"]);
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.match(/^deployed a location policy at 0x[0-9a-fA-F]{40}\n/);
      expect(human.stdout).to.include("ota-ledger policy attach");
    });

    it("deploys an approval policy with its approvers and M", async () => {
      const address = await deploy("approval", "--approver", c.admin.address, "--approver", c.outsider.address, "--threshold", "2");
      const p = ApprovalPolicy__factory.connect(address, c.provider);
      expect(await p.threshold()).to.equal(2n);
      expect([...(await p.approvers())].sort()).to.deep.equal([c.admin.address, c.outsider.address].sort());
    });

    it("deploys a maintenance window that wraps midnight on chosen days", async () => {
      const address = await deploy("maintenance-window", "--window", "22:00-02:30", "--days", "mon-fri,sun");
      const [start, end, days] = await MaintenanceWindowPolicy__factory.connect(address, c.provider).window();
      expect([Number(start), Number(end), Number(days)]).to.deep.equal([22 * 60, 2 * 60 + 30, 0b1011111]);
    });

    it("deploys an all-of composer of member policies", async () => {
      const a = await deploy("staged-rollout");
      const b = await deploy("location");
      const all = await deploy("all-of", "--member", a, "--member", b);
      expect(await AllOfPolicy__factory.connect(all, c.provider).members()).to.deep.equal([a, b]);
    });

    it("refuses bad input before deploying anything", async () => {
      await refuses(
        ["policy", "deploy", "rollout"],
        2,
        "INVALID_INPUT",
        /"rollout" is not a kind .*staged-rollout, location, approval, maintenance-window, all-of, any-of/,
      );
      await refuses(
        ["policy", "deploy", "approval", "--approver", c.admin.address, "--approver", c.admin.address.toLowerCase(), "--threshold", "1"],
        2,
        "INVALID_INPUT",
        /given twice/,
      );
      await refuses(
        ["policy", "deploy", "approval", "--approver", c.admin.address, "--threshold", "0"],
        2,
        "INVALID_INPUT",
        /--threshold: "0" is not a whole number from 1 to 1/,
      );
      await refuses(["policy", "deploy", "approval", "--approver", c.admin.address, "--threshold", "2"], 2, "INVALID_INPUT", /from 1 to 1/);
      await refuses(["policy", "deploy", "approval", "--approver", c.admin.address], 2, "INVALID_INPUT", /--threshold: missing/);
      await refuses(["policy", "deploy", "maintenance-window", "--window", "24:00-02:00"], 2, "INVALID_INPUT", /--window: "24:00-02:00" is not a window/);
      await refuses(["policy", "deploy", "maintenance-window", "--window", "22:00-02:00", "--days", "mon,funday"], 2, "INVALID_INPUT", /"funday" is not a day/);
      await refuses(["policy", "deploy", "staged-rollout", "--threshold", "2"], 2, "INVALID_INPUT", /--threshold does not apply to a staged-rollout policy/);
      await refuses(["policy", "deploy", "any-of"], 2, "INVALID_INPUT", /a composer takes 1 to 8 member policies/);
      await refuses(["policy", "deploy", "any-of", "--member", c.outsider.address], 2, "NOT_A_POLICY", /there is no contract at/);
      await refuses(
        ["policy", "deploy", "any-of", "--member", String(c.registry.target)],
        2,
        "NOT_A_POLICY",
        /neither declares IUpdatePolicy through ERC-165 nor answers IUpdatePolicy.check/,
      );
    });
  });

  describe("policy attach, detach and show (APP-II-3)", () => {
    it("APP-II-3: attaches a policy to a component; the release inherits it, and show says what it is", async () => {
      const rollout = await deploy("staged-rollout");
      const r = await c.run(["policy", "attach", rollout, "--component", "acme.bootloader", "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.json()).to.deep.include({ policy: { address: rollout, kind: "staged-rollout" }, replaced: null });
      expect(r.json().target).to.deep.equal({ type: "component", id: c.component, name: "acme.bootloader", component: c.component });
      expect(await c.policies.policyFor(releaseId, c.component)).to.equal(rollout);

      const shown = await c.run(["policy", "show", "--release", releaseId, "--json"]);
      expect(shown.code, shown.stderr).to.equal(0);
      expect(shown.json().policy).to.deep.include({ address: rollout, kind: "staged-rollout", attachedTo: "component" });
      expect(shown.json().policy.settings).to.deep.include({ rollout: "none", waves: 0 });
      const human = await c.run(["policy", "show", "--component", c.component]);
      expect(human.stdout).to.include(`policy  ${rollout} (staged rollout)`);
    });

    it("APP-II-3: a release's own policy replaces its component's; show lists a composer's members recursively", async () => {
      const rollout = await deploy("staged-rollout");
      const window = await deploy("maintenance-window", "--window", "00:00-00:00");
      const inner = await deploy("any-of", "--member", rollout, "--member", window);
      const location = await deploy("location");
      const outer = await deploy("all-of", "--member", inner, "--member", location);
      const r = await c.run(["policy", "attach", outer, "--release", releaseId, "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(await c.policies.policyFor(releaseId, c.component)).to.equal(outer);

      const shown = (await c.run(["policy", "show", "--release", releaseId, "--json"])).json().policy;
      expect(shown).to.deep.include({ address: outer, kind: "all-of", attachedTo: "release" });
      expect(shown.members.map((m: { kind: string }) => m.kind)).to.deep.equal(["any-of", "location"]);
      expect(shown.members[0].members.map((m: { address: string; kind: string }) => [m.address, m.kind])).to.deep.equal([
        [rollout, "staged-rollout"],
        [window, "maintenance-window"],
      ]);
      expect(shown.members[0].members[1].settings).to.deep.equal({ window: "00:00-00:00", days: "all" });
      expect(shown.members[1].settings).to.deep.equal({ rule: null });

      const detached = await c.run(["policy", "detach", "--release", releaseId, "--json"]);
      expect(detached.code, detached.stderr).to.equal(0);
      expect(detached.json().detached).to.equal(outer);
      expect(await c.policies.policyFor(releaseId, c.component)).to.not.equal(outer);
      await refuses(["policy", "detach", "--release", releaseId], 1, "NOTHING_ATTACHED", /has no policy of its own attached/);
    });

    it("APP-II-3 issue 18: attaches a policy built on the kit that refuses the all-zero inputs it was once probed with: it is recognised by ERC-165", async () => {
      const strict = await new PolicyMockStrict__factory(c.admin).deploy(String(c.registry.target), 3600);
      await strict.waitForDeployment();
      const address = await strict.getAddress();
      const r = await c.run(["policy", "attach", address, "--release", releaseId, "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(await c.policies.policyFor(releaseId, c.component)).to.equal(address);
      expect((await c.run(["policy", "detach", "--release", releaseId])).code).to.equal(0);
    });

    it("refuses what is not an update policy, an unknown target, a wrong target form, and a non-administrator", async () => {
      const rollout = await deploy("staged-rollout");
      const before = await c.policies.policyFor(releaseId, c.component);
      await refuses(["policy", "attach", c.outsider.address, "--component", "acme.bootloader"], 2, "NOT_A_POLICY", /there is no contract at/);
      await refuses(
        ["policy", "attach", String(c.registry.target), "--component", "acme.bootloader"],
        2,
        "NOT_A_POLICY",
        /neither declares IUpdatePolicy through ERC-165 nor answers IUpdatePolicy.check/,
      );
      await refuses(["policy", "attach", rollout, "--component", "acme.nothing"], 2, "UNKNOWN_COMPONENT", /no component "acme.nothing"/);
      await refuses(["policy", "attach", rollout, "--release", "0x" + "11".repeat(32)], 2, "UNKNOWN_RELEASE", /no release 0x1111.* is published/);
      await refuses(["policy", "attach", rollout, "--release", "acme-1.0"], 2, "INVALID_INPUT", /--release: "acme-1.0" is not an id/);
      await refuses(["policy", "attach", rollout], 2, "INVALID_INPUT", /give exactly one target/);
      await refuses(["policy", "attach", rollout, "--component", "acme.bootloader", "--release", releaseId], 2, "INVALID_INPUT", /give exactly one target/);
      await refuses(
        ["policy", "attach", rollout, "--component", "acme.bootloader"],
        1,
        "NOT_ADMINISTRATOR",
        new RegExp(`${c.outsider.address} is not an administrator`),
        {
          OTA_PRIVATE_KEY: c.outsider.privateKey,
        },
      );
      await refuses(["policy", "detach", "--component", "acme.bootloader"], 1, "NOT_ADMINISTRATOR", /is not an administrator/, {
        OTA_PRIVATE_KEY: c.outsider.privateKey,
      });
      expect(await c.policies.policyFor(releaseId, c.component), "the attachment did not move").to.equal(before);
    });
  });

  describe("policy location (CAP-11.3-h)", () => {
    let location: string;
    before(async () => {
      location = await deploy("location");
    });

    it("CAP-11.3-h: sets a component's allowed and denied regions and networks, and clears them", async () => {
      const r = await c.run([
        "policy",
        "location",
        "set",
        location,
        "--component",
        "acme.bootloader",
        "--allow-region",
        "eu-west",
        "--allow-region",
        "eu-north",
        "--deny-network",
        "guest",
        "--json",
      ]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.json().rule).to.deep.equal({ allowedRegions: ["eu-west", "eu-north"], deniedRegions: [], allowedNetworks: [], deniedNetworks: ["guest"] });
      const [exists, rule] = await LocationPolicy__factory.connect(location, c.provider).rule(c.component);
      expect(exists).to.equal(true);
      expect(rule.allowedRegions).to.deep.equal([encodeBytes32String("eu-west"), encodeBytes32String("eu-north")]);
      expect(rule.deniedNetworks).to.deep.equal([encodeBytes32String("guest")]);

      const cleared = await c.run(["policy", "location", "clear", location, "--component", "acme.bootloader", "--json"]);
      expect(cleared.code, cleared.stderr).to.equal(0);
      expect((await LocationPolicy__factory.connect(location, c.provider).rule(c.component))[0]).to.equal(false);
      await refuses(["policy", "location", "clear", location, "--component", "acme.bootloader"], 1, "NO_RULE", /has no rule in the location policy/);
    });

    it("CAP-11.3-h: a release's own rule shows as the one deciding for it", async () => {
      await c.run(["policy", "location", "set", location, "--release", releaseId, "--deny-region", "us-east"]);
      await c.run(["policy", "attach", location, "--release", releaseId]);
      const shown = (await c.run(["policy", "show", "--release", releaseId, "--json"])).json().policy;
      expect(shown.settings).to.deep.equal({
        ruleOf: "release",
        rule: { allowedRegions: [], deniedRegions: ["us-east"], allowedNetworks: [], deniedNetworks: [] },
      });
      await c.run(["policy", "detach", "--release", releaseId]);
    });

    it("refuses a label both allowed and denied, a policy of the wrong kind, and a non-administrator", async () => {
      await refuses(
        ["policy", "location", "set", location, "--component", "acme.bootloader", "--allow-network", "lab", "--deny-network", "lab"],
        2,
        "INVALID_INPUT",
        /network "lab" is both allowed and denied/,
      );
      const rollout = await deploy("staged-rollout");
      await refuses(
        ["policy", "location", "set", rollout, "--component", "acme.bootloader", "--deny-region", "x"],
        2,
        "POLICY_WRONG_KIND",
        /is a staged rollout, not a location policy/,
      );
      await refuses(
        ["policy", "location", "set", location, "--component", "acme.bootloader", "--deny-region", "x"],
        1,
        "NOT_ADMINISTRATOR",
        /is not an administrator/,
        {
          OTA_PRIVATE_KEY: c.outsider.privateKey,
        },
      );
    });
  });

  describe("policy window set", () => {
    it("replaces the window, keeping the days when only --window is given", async () => {
      const address = await deploy("maintenance-window", "--window", "01:00-03:00", "--days", "sat,sun");
      const r = await c.run(["policy", "window", "set", address, "--window", "23:30-00:30", "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.json()).to.deep.include({ policy: address, window: "23:30-00:30", days: "sat,sun" });
      const [start, end, days] = await MaintenanceWindowPolicy__factory.connect(address, c.provider).window();
      expect([Number(start), Number(end), Number(days)]).to.deep.equal([23 * 60 + 30, 30, 0b1100000]);
      await refuses(["policy", "window", "set", address], 2, "INVALID_INPUT", /give --window HH:MM-HH:MM, --days, or both/);
      await refuses(
        ["policy", "window", "set", await deploy("location"), "--days", "all"],
        2,
        "POLICY_WRONG_KIND",
        /is a location policy, not a maintenance window/,
      );
    });
  });

  describe("without an UpdatePolicies contract", () => {
    let bare: CliChain;
    before(async () => {
      bare = await startCliChain();
    });
    after(async () => {
      await bare?.stop();
    });

    it("says how to configure one", async () => {
      for (const args of [
        ["policy", "attach", ZeroAddress.replace(/0$/, "1"), "--component", "acme.bootloader"],
        ["policy", "show", "--component", "acme.bootloader"],
      ]) {
        const r = await bare.run([...args, "--json"]);
        expect(r.code, r.stdout).to.equal(2);
        expect(r.json().error.code).to.equal("NO_POLICIES");
        expect(r.json().error.message).to.match(/npm run deploy:local.*OTA_POLICIES/);
      }
    });
  });

  describe("policy check (issue 18: refusals explained)", () => {
    let deviceConfig: string;
    let deviceId: string;
    before(async () => {
      ({ deviceConfig, deviceId } = await enrolTestDevice(c, "check-0001", "check-device"));
    });
    const check = async (release: string, ...extra: string[]) => {
      const r = await c.run(["policy", "check", "--release", release, "--device-config", deviceConfig, ...extra, "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      return r.json();
    };

    it("APP-II-3 issue 18: names the refusing policy and its reason's name, down a composer's members to the member that refused, then allows once the rule lets it", async () => {
      const release = await c.publish("1.20.0");
      const strict = await new PolicyMockStrict__factory(c.admin).deploy(String(c.registry.target), 3600);
      await strict.waitForDeployment();
      const strictAddress = await strict.getAddress();
      expect((await c.run(["policy", "attach", strictAddress, "--release", release])).code).to.equal(0);
      let a = await check(release);
      expect(a).to.deep.include({ verdict: "INSTALLABLE", allowed: false });
      expect(a.device).to.deep.include({ id: deviceId, installed: [], evidence: "0x", evidenceFrom: "none" });
      expect(a.policy).to.deep.include({ policy: strictAddress, reason: "1", path: [] });
      expect(a.policy.decidedBy).to.deep.equal({ policy: strictAddress, reason: "1", name: "SOAKING" });
      const human = await c.run(["policy", "check", "--release", release, "--device-config", deviceConfig]);
      expect(human.stdout).to.match(new RegExp(`^refused: device ${deviceId}`));
      expect(human.stdout).to.include(`refused by ${strictAddress}: reason 1 (SOAKING)`);

      // Inside a composer: the path leads to the member that refused.
      const window = await deploy("maintenance-window", "--window", "00:00-00:00", "--days", "all");
      const composer = await deploy("all-of", "--member", window, "--member", strictAddress);
      expect((await c.run(["policy", "attach", composer, "--release", release])).code).to.equal(0);
      a = await check(release);
      expect(a.allowed).to.equal(false);
      expect(a.policy.path).to.deep.equal([{ composer, member: 1, address: strictAddress }]);
      expect(a.policy.decidedBy).to.deep.equal({ policy: strictAddress, reason: "1", name: "SOAKING" });

      // The soak time passes: allowed, and the answer says so.
      await c.provider.send("evm_increaseTime", [3600]);
      await c.provider.send("evm_mine", []);
      a = await check(release);
      expect(a).to.deep.include({ allowed: true });
      expect(a.policy).to.deep.include({ policy: composer, reason: "0", allowed: true, path: [] });
      expect((await c.run(["policy", "detach", "--release", release])).code).to.equal(0);
    });

    it("APP-II-3 issue 18: a policy that reverts is shown with its revert (a known error by name, else its data), not only as 'policy failed'", async () => {
      const release = await c.publish("1.21.0");
      const broken = await (await new PolicyMockReverting__factory(c.admin).deploy()).waitForDeployment();
      const brokenAddress = await broken.getAddress();
      // A mock written before the kit (no ERC-165): the CLI probes it with check(), which it refuses (it reverts on empty
      // evidence), so it is attached directly on the contract, as a careless administrator could.
      await refuses(["policy", "attach", brokenAddress, "--release", release], 2, "NOT_A_POLICY", /neither declares IUpdatePolicy/);
      await c.send((o) => c.policies.connect(c.admin).attachPolicy(release, brokenAddress, o));
      const a = await check(release);
      expect(a.allowed).to.equal(false);
      expect(a.policy.reason).to.equal((2n ** 256n - 1n).toString());
      const selector = broken.interface.getError("PolicyMockBroken")!.selector;
      expect(a.policy.decidedBy.failure.data.startsWith(selector)).to.equal(true);
      expect(a.policy.decidedBy.failure.error).to.equal(null); // not one of the shipped policies' errors
      const evidence = await check(release, "--evidence", "0x01");
      expect(evidence.device).to.deep.include({ evidence: "0x01", evidenceFrom: "--evidence" });
      expect(evidence.policy.decidedBy.failure).to.deep.equal({ error: null, data: "0x" }); // reverted without data
      await refuses(["policy", "check", "--release", release, "--device-config", deviceConfig, "--evidence", "0x1"], 2, "INVALID_INPUT", /--evidence: give 0x/);
      expect((await c.run(["policy", "detach", "--release", release])).code).to.equal(0);
    });
  });

  describe("policy allowlist and policy evidence (issue 18: evidence any policy can use)", () => {
    let deviceConfig: string;
    let deviceId: string;
    before(async () => {
      ({ deviceConfig, deviceId } = await enrolTestDevice(c, "allow-0001", "allowlist-device"));
      writeFileSync(path.join(c.dir, "allowed.txt"), "# the devices allowed early\nallow-0001\nallow-0002\n");
    });

    it("APP-II-3 issue 18: builds the allowlist and each device's proof, hands this device its part of a composition's evidence, and the policy refuses it while the release soaks, then allows it", async () => {
      const release = await c.publish("1.30.0");
      const built = await c.run(["policy", "allowlist", "--devices", "allowed.txt", "--out", "allowed.json", "--json"]);
      expect(built.code, built.stderr).to.equal(0);
      const list = buildCohort([deviceId, keccak256(toUtf8Bytes("allow-0002"))]);
      expect(built.json()).to.deep.include({ root: list.root, devices: 2 });
      const file = JSON.parse(readFileSync(path.join(c.dir, "allowed.json"), "utf8"));
      expect(file).to.deep.equal({
        root: list.root,
        devices: { [deviceId]: encodeListedEvidence(list.proofs[0]), [list.deviceIds[1]]: encodeListedEvidence(list.proofs[1]) },
      });
      const human = await c.run(["policy", "allowlist", "--devices", "allowed.txt", "--out", "allowed.json"]);
      expect(human.stdout)
        .to.include(`allowlist root ${list.root} (2 device(s))`)
        .and.include("ota-ledger policy evidence --release <id> --policy <address> --file allowed.json");

      // The allowlist soaking an hour, composed with a policy that needs no evidence.
      const allowlist = await (await new AllowlistSoakPolicy__factory(c.admin).deploy(String(c.registry.target), 3600)).waitForDeployment();
      const allowlistAddress = await allowlist.getAddress();
      await c.send((o) => allowlist.setAllowlist(list.root, o));
      const window = await deploy("maintenance-window", "--window", "00:00-00:00", "--days", "all");
      const composer = await deploy("all-of", "--member", window, "--member", allowlistAddress);
      expect((await c.run(["policy", "attach", composer, "--release", release])).code).to.equal(0);
      const check = async () => (await c.run(["policy", "check", "--release", release, "--device-config", deviceConfig, "--json"])).json();
      expect((await check()).policy.decidedBy).to.deep.include({ policy: allowlistAddress, name: "NO_EVIDENCE" });

      const handed = await c.run([
        "policy",
        "evidence",
        "--release",
        release,
        "--policy",
        allowlistAddress,
        "--file",
        "allowed.json",
        "--device-config",
        deviceConfig,
        "--json",
      ]);
      expect(handed.code, handed.stdout + handed.stderr).to.equal(0);
      expect(handed.json()).to.deep.include({ releaseId: release, policy: allowlistAddress, deviceId });
      expect([...splitEvidence(handed.json().evidence)]).to.deep.equal([[allowlistAddress, encodeListedEvidence(list.proofs[0])]]);
      let a = await check();
      expect(a.device).to.deep.include({ evidenceFrom: "device", evidence: handed.json().evidence });
      expect(a.policy.decidedBy).to.deep.include({ policy: allowlistAddress, name: "SOAKING" });
      await c.provider.send("evm_increaseTime", [3600]);
      await c.provider.send("evm_mine", []);
      a = await check();
      expect(a).to.deep.include({ allowed: true });
      expect((await c.run(["policy", "detach", "--release", release])).code).to.equal(0);
    });

    it("refuses a device the file does not name, a policy not deciding for the release, a bad file and both --tracker and --device-config, writing nothing", async () => {
      const release = await c.publish("1.31.0");
      const args = ["policy", "evidence", "--release", release, "--file"];
      writeFileSync(path.join(c.dir, "other.json"), JSON.stringify({ devices: { [keccak256(toUtf8Bytes("someone else"))]: "0x01" } }));
      await refuses([...args, "other.json", "--device-config", deviceConfig], 2, "DEVICE_NOT_IN_FILE", new RegExp(`no evidence for device ${deviceId}`));
      await refuses(
        [...args, "allowed.json", "--policy", String(c.registry.target), "--device-config", deviceConfig],
        2, // bad input: an address that is not one of the release's policies
        "POLICY_NOT_ATTACHED",
        /is not a policy deciding for release .* nor a member of it that reads evidence/,
      );
      for (const [content, message] of [
        ["not json", /cannot be read/],
        [JSON.stringify({ devices: { [deviceId]: "0x1" } }), /must be 0x-prefixed hex of 1 to 4096 bytes/],
        [JSON.stringify({ devices: { "0x12": "0x01" } }), /0x12 is not a device id/],
        [JSON.stringify({ devices: {} }), /holds evidence for no device/],
        [JSON.stringify([1]), /must be a JSON object/],
      ] as const) {
        writeFileSync(path.join(c.dir, "bad.json"), content);
        await refuses([...args, "bad.json", "--device-config", deviceConfig], 2, "EVIDENCE_FILE_INVALID", message);
      }
      await refuses([...args, "allowed.json", "--device-config", deviceConfig, "--tracker", "http://127.0.0.1:1"], 2, "INVALID_INPUT", /not both/);
      expect(existsSync(path.join(path.dirname(deviceConfig), "data", "agent-state.json")), "the earlier test's state only").to.equal(true);
      const held = JSON.parse(readFileSync(path.join(path.dirname(deviceConfig), "data", "agent-state.json"), "utf8")).evidence;
      expect(Object.keys(held)).to.not.include(release);
    });
  });

  describe("policy call and policy send (a policy's own functions, issue 18)", () => {
    it("APP-II-3 issue 18: sends an administrator's transaction to a policy's own function and reads its views, decoding the policy's revert", async () => {
      const policy = await (await new AllowlistSoakPolicy__factory(c.admin).deploy(String(c.registry.target), 60)).waitForDeployment();
      const address = await policy.getAddress();
      const root = keccak256(toUtf8Bytes("a root"));
      const sent = await c.run(["policy", "send", address, "setAllowlist(bytes32)", root, "--json"]);
      expect(sent.code, sent.stdout + sent.stderr).to.equal(0);
      expect(sent.json()).to.deep.include({ policy: address, function: "setAllowlist(bytes32)" });
      expect(sent.json().tx.hash).to.match(/^0x[0-9a-f]{64}$/);
      expect(await policy.allowlistRoot()).to.equal(root);
      const read = await c.run(["policy", "call", address, "allowlistRoot() returns (bytes32)", "--json"]);
      expect(read.json()).to.deep.include({ function: "allowlistRoot()", result: [root] });
      expect((await c.run(["policy", "call", address, "reasonName(uint256) returns (string)", "6"])).stdout).to.equal("SOAKING\n");
      expect((await c.run(["policy", "call", address, "SOAK_SECONDS() returns (uint256)", "--json"])).json().result).to.deep.equal(["60"]);
      // The policy's own error, by name; nothing mined.
      const zero = await c.refuses(["policy", "send", address, "setAllowlist(bytes32)", ZeroHash], 1, "AllowlistSoakPolicyZeroRoot", /.*/);
      expect(zero.code).to.equal("AllowlistSoakPolicyZeroRoot");
    });

    it("refuses a malformed signature, a wrong number of arguments, a value that does not fit, and an address with no code, before sending", async () => {
      const address = String(c.policies.target);
      await refuses(["policy", "send", address, "setAllowlist(bytes32", "0x01"], 2, "INVALID_INPUT", /is not a function signature/);
      await refuses(["policy", "send", address, "setAllowlist(bytes32)"], 2, "INVALID_INPUT", /takes 1 argument\(s\), 0 given/);
      await refuses(["policy", "send", address, "setAllowlist(bytes32)", "0x01"], 2, "INVALID_INPUT", /do not fit setAllowlist\(bytes32\)/);
      await refuses(["policy", "send", address, "enrol(bytes32[])", "not json"], 2, "INVALID_INPUT", /must be JSON/);
      await refuses(["policy", "send", address, "pause(bool)", "yes"], 2, "INVALID_INPUT", /must be true or false/);
      await refuses(["policy", "call", ZeroAddress.replace(/0$/, "9"), "x() returns (uint256)"], 2, "NOT_A_CONTRACT", /has no code/);
    });
  });

  describe("device enrol --write-config (a starter device.json, issue 18)", () => {
    it("writes a device.json the tools take, and refuses an existing file before enrolling", async () => {
      const key = Wallet.createRandom();
      const file = path.join(c.dir, "starter", "device.json");
      const args = [
        "device",
        "enrol",
        "--id",
        "starter-0001",
        "--public-key",
        key.signingKey.compressedPublicKey,
        "--hardware",
        "rev-a",
        "--network",
        "plant-1",
        "--region",
        "eu-west",
      ];
      await refuses([...args, "--write-config", "starter/device.json"], 2, "INVALID_INPUT", /needs the components/);
      const r = await c.run([...args, "--write-config", "starter/device.json", "--component", "acme.bootloader", "--json"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.json().deviceConfig).to.equal(file);
      writeFileSync(path.join(c.dir, "starter", "device.key"), key.privateKey + "\n", { mode: 0o600 });
      const written = await loadDeviceConfig(file);
      expect(written.credential.record).to.deep.equal(r.json().device);
      expect(written.components.map((x) => x.toLowerCase())).to.deep.equal([c.component.toLowerCase()]);
      expect(written.dataDir).to.equal(path.join(c.dir, "starter", "data"));
      const again = [
        "device",
        "enrol",
        "--id",
        "starter-0002",
        "--public-key",
        Wallet.createRandom().signingKey.compressedPublicKey,
        "--hardware",
        "rev-a",
        "--network",
        "n",
        "--region",
        "r",
      ];
      await refuses(
        [...again, "--write-config", "starter/device.json", "--component", "acme.bootloader"],
        2,
        "CONFIG_FILE_EXISTS",
        /exists: nothing was enrolled/,
      );
      await refuses([...again, "--component", "acme.bootloader"], 2, "INVALID_INPUT", /--component goes with --write-config/);
      const status = await c.run(["device", "status", "starter-0002", "--json"]);
      expect(status.json().device.enrolment, "the refused device was not enrolled").to.equal("none");
    });
  });

  describe("window and day parsing (no chain)", () => {
    for (const [text, startMinute, endMinute] of [
      ["08:00-17:30", 480, 1050],
      ["22:00-02:00", 1320, 120],
      ["00:00-00:00", 0, 0],
      ["23:59-00:00", 1439, 0],
    ] as const) {
      it(`reads ${text} as minutes ${startMinute}-${endMinute}`, () => expect(parseWindow(text)).to.deep.equal({ startMinute, endMinute }));
    }
    for (const bad of ["8:00-17:00", "24:00-01:00", "10:60-11:00", "10:00", "10:00-11:00-12:00", ""]) {
      it(`refuses the window "${bad}"`, () => expect(() => parseWindow(bad)).to.throw(/--window: .*is not a window/));
    }
    for (const [text, mask] of [
      ["all", 0x7f],
      ["mon", 0b1],
      ["mon-fri", 0b11111],
      ["sat,sun", 0b1100000],
      ["fri-mon", 0b1110001],
      ["Tue, thu", 0b1010],
    ] as const) {
      it(`reads the days "${text}" as the mask ${mask.toString(2)}`, () => expect(parseWeekdays(text)).to.equal(mask));
    }
    it("refuses an unknown day or an empty one, and writes masks back as names", () => {
      expect(() => parseWeekdays("mon,,tue")).to.throw(/has an empty day/);
      expect(() => parseWeekdays("weekend")).to.throw(/"weekend" is not a day/);
      expect(formatWeekdays(0x7f)).to.equal("all");
      expect(formatWeekdays(0b1100000)).to.equal("sat,sun");
    });
  });
});
