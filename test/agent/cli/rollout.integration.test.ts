import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { freePort, policyChain, type PolicyChain } from "./cliHarness";
import { buildCohort, encodeRolloutEvidence } from "../../../agent/crypto/cohortTree";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { TrackerModule } from "../../../agent/tracker/trackerModule";
import { startTrackerHttp, type RunningTrackerHttp } from "../../../agent/tracker/trackerHttp";
import { StagedRollout__factory } from "../../../typechain-types";
import { parseStartTime } from "../../../agent/cli/parse";
import { parseDevicesList, parseWaveOption } from "../../../agent/cli/cohortFiles";

const label = (l: string) => keccak256(toUtf8Bytes(l));

describe("ota-ledger rollout (staged rollouts, APP-II-3)", function () {
  this.timeout(120_000);
  let c: PolicyChain;
  let rollout: string; // the StagedRollout attached to acme.bootloader
  let releases: string[];
  let tracker: TrackerModule;
  let http: RunningTrackerHttp;
  let trackerDir: string;

  before(async () => {
    c = await policyChain();
    releases = [];
    for (const v of ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]) releases.push(await c.publish(v));
    const deployed = await c.run(["policy", "deploy", "staged-rollout", "--json"]);
    rollout = deployed.json().policy.address;
    expect((await c.run(["policy", "attach", rollout, "--component", "acme.bootloader"])).code).to.equal(0);
    // A real tracker (server module) that mirrors the ledger and takes the administrator's cohorts.
    const key = new Wallet(label("rollout test tracker key"));
    const moduleId = label("rollout test tracker");
    await c.send((o) => c.registry.connect(c.admin).grantRole(label("TRACKER_ROLE"), c.admin.address, o));
    await c.send((o) => c.fleet.connect(c.admin).registerTrackerModule(moduleId, key.address, key.signingKey.compressedPublicKey, ZeroHash, o));
    trackerDir = mkdtempSync(path.join(tmpdir(), "ota-rollout-tracker-"));
    tracker = new TrackerModule({
      chain: {
        provider: c.provider,
        registry: c.registry,
        fleet: c.fleet,
        policies: c.policies,
        domain: registryDomain(31337, String(c.registry.target)),
        fromBlock: 0,
      },
      module: { id: moduleId, privateKey: key.privateKey },
      dataDir: trackerDir,
      pollMs: 200,
    });
    await tracker.start();
    await tracker.stream.pollOnce();
    http = await startTrackerHttp(tracker, {});
    writeFileSync(path.join(c.dir, "wave0.txt"), "# first wave: the lab\ndev-1\n\n  dev-2   # the spare\n");
    writeFileSync(path.join(c.dir, "wave1.json"), JSON.stringify(["dev-3", label("dev-4")]));
    writeFileSync(path.join(c.dir, "empty.txt"), "# nobody yet\n\n");
  });
  after(async () => {
    await http?.close();
    await tracker?.stop();
    if (trackerDir) rmSync(trackerDir, { recursive: true, force: true });
    await c?.stop();
  });

  const refuses = (...args: Parameters<PolicyChain["refuses"]>) => c.refuses(...args);
  const wave0 = buildCohort([label("dev-1"), label("dev-2")]);
  const wave1 = buildCohort([label("dev-3"), label("dev-4")]);

  it("APP-II-3: creates a two-wave rollout on the release's StagedRollout and hands the cohorts to the tracker", async () => {
    const r = await c.run([
      "rollout",
      "create",
      releases[0],
      "--wave",
      "wave0.txt@now",
      "--wave",
      "wave1.json@+1h",
      "--threshold",
      "3",
      "--tracker",
      http.url,
      "--json",
    ]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const out = r.json();
    expect(out).to.deep.include({ releaseId: releases[0], policy: rollout, failureThreshold: 3, tracker: { tracker: http.url, devices: 4 } });
    expect(out.waves.map((w: { index: number; devices: number; cohortRoot: string }) => [w.index, w.devices, w.cohortRoot])).to.deep.equal([
      [0, 2, wave0.root],
      [1, 2, wave1.root],
    ]);
    const onLedger = await StagedRollout__factory.connect(rollout, c.provider).rolloutWaves(releases[0]);
    expect(onLedger.map((w) => w.cohortRoot)).to.deep.equal([wave0.root, wave1.root]);
    expect(Number(onLedger[1].startsAt) - Number(onLedger[0].startsAt)).to.equal(3600);
    expect(Date.parse(out.waves[1].startsAt) / 1000).to.equal(Number(onLedger[1].startsAt));
    // The tracker keeps each device's proof of its wave, as the ledger checks it.
    expect(tracker.store.evidence.of(releases[0], label("dev-2"))).to.equal(encodeRolloutEvidence(0, wave0.proofs[1]));
    expect(tracker.store.evidence.of(releases[0], label("dev-4"))).to.equal(encodeRolloutEvidence(1, wave1.proofs[1]));

    const status = await c.run(["rollout", "status", releases[0], "--json"]);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.json()).to.deep.include({ state: "open", failures: 0, failureThreshold: 3, paused: false, aborted: false, openWaves: 1 });
    expect(status.json().waves.map((w: { open: boolean }) => w.open)).to.deep.equal([true, false]);
    const human = await c.run(["rollout", "status", releases[0]]);
    expect(human.stdout).to.match(/: open\n {2}failures {2}0 of 3 .*\n {2}waves {5}1 of 2 open/);
  });

  it("refuses bad waves, an unknown release, a second rollout and a non-administrator before sending", async () => {
    writeFileSync(path.join(c.dir, "wave-later.txt"), "dev-9\n");
    await refuses(
      ["rollout", "create", releases[1], "--wave", "wave0.txt@+2h", "--wave", "wave1.json@+1h", "--no-tracker"],
      2,
      "WAVES_OUT_OF_ORDER",
      /--wave 1 \(wave1.json\) starts at .*, before wave 0/,
    );
    await refuses(["rollout", "create", releases[1], "--wave", "empty.txt", "--no-tracker"], 2, "DEVICES_FILE_EMPTY", /devices file empty.txt lists no device/);
    await refuses(
      ["rollout", "create", releases[1], "--wave", "missing.txt", "--no-tracker"],
      2,
      "DEVICES_FILE_UNREADABLE",
      /missing.txt cannot be read \(ENOENT\)/,
    );
    await refuses(["rollout", "create", releases[1], "--wave", "wave0.txt@tomorrow", "--no-tracker"], 2, "INVALID_INPUT", /"tomorrow" is not a time/);
    await refuses(
      ["rollout", "create", releases[1], "--wave", "wave0.txt", "--threshold", "0", "--no-tracker"],
      2,
      "INVALID_INPUT",
      /--threshold: "0" is not a whole number/,
    );
    await refuses(
      ["rollout", "create", "0x" + "ab".repeat(32), "--wave", "wave0.txt", "--no-tracker"],
      2,
      "UNKNOWN_RELEASE",
      /no release 0xabab.* is published/,
    );
    await refuses(
      ["rollout", "create", releases[0], "--wave", "wave0.txt", "--no-tracker"],
      1,
      "ROLLOUT_EXISTS",
      /already has a rollout on 0x[0-9a-fA-F]{40} \(one per release, even after an abort\)/,
    );
    await refuses(["rollout", "create", releases[1], "--wave", "wave0.txt", "--no-tracker"], 1, "NOT_ADMINISTRATOR", /is not an administrator/, {
      OTA_PRIVATE_KEY: c.outsider.privateKey,
    });
    const location = (await c.run(["policy", "deploy", "location", "--json"])).json().policy.address;
    await refuses(
      ["rollout", "create", releases[1], "--wave", "wave0.txt", "--policy", location, "--no-tracker"],
      2,
      "POLICY_WRONG_KIND",
      /is a location policy, not a staged rollout/,
    );
    expect((await StagedRollout__factory.connect(rollout, c.provider).rolloutStatus(releases[1])).state).to.equal(0n);
  });

  it("pauses, resumes, re-thresholds and aborts the rollout, refusing what the state does not allow", async () => {
    const staged = StagedRollout__factory.connect(rollout, c.provider);
    const id = releases[0];
    await refuses(["rollout", "pause", id], 1, "NOT_ADMINISTRATOR", /is not an administrator/, { OTA_PRIVATE_KEY: c.outsider.privateKey });
    const paused = await c.run(["rollout", "pause", id, "--json"]);
    expect(paused.code, paused.stderr).to.equal(0);
    expect(paused.json()).to.deep.include({ releaseId: id, policy: rollout, action: "pause", state: "paused" });
    expect((await staged.rolloutStatus(id)).paused).to.equal(true);
    await refuses(["rollout", "pause", id], 1, "ROLLOUT_ALREADY_PAUSED", /already paused/);
    expect((await c.run(["rollout", "resume", id])).code).to.equal(0);
    expect((await staged.rolloutStatus(id)).paused).to.equal(false);
    await refuses(["rollout", "resume", id], 1, "ROLLOUT_NOT_PAUSED", /is not paused \(it is open\)/);
    const raised = await c.run(["rollout", "threshold", id, "10", "--json"]);
    expect(raised.code, raised.stderr).to.equal(0);
    expect(raised.json()).to.deep.include({ previous: 3, threshold: 10, failures: 0, state: "open" });
    expect((await staged.rolloutStatus(id)).failureThreshold).to.equal(10n);
    await refuses(["rollout", "threshold", id, "0"], 2, "INVALID_INPUT", /threshold: "0" is not a whole number/);
    const aborted = await c.run(["rollout", "abort", id, "--json"]);
    expect(aborted.json().state).to.equal("aborted");
    expect((await staged.rolloutStatus(id)).aborted).to.equal(true);
    await refuses(["rollout", "abort", id], 1, "ROLLOUT_ABORTED", /was aborted: nothing more can be changed/);
    await refuses(["rollout", "pause", releases[3]], 1, "NO_ROLLOUT", /has no rollout on/);
  });

  it("when the tracker does not take the cohorts, says the rollout IS on the ledger and gives the command that sends them again", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const r = await c.run(["rollout", "create", releases[1], "--wave", "wave0.txt", "--wave", "wave1.json@+1d", "--tracker", down, "--json"]);
    expect(r.code).to.equal(1);
    const error = r.json().error;
    expect(error.code).to.equal("COHORTS_NOT_SENT");
    expect(error.message).to.match(
      new RegExp(
        `the rollout of ${releases[1]} IS on the ledger \\(tx 0x[0-9a-f]{64}\\), but its cohorts did not reach the tracker: the tracker at ${down} does not answer`,
      ),
    );
    const retry = `ota-ledger rollout cohorts ${releases[1]} --wave wave0.txt --wave wave1.json --tracker ${down}`;
    expect(error.message).to.include(`Send them again with \`${retry}\``);
    expect((await StagedRollout__factory.connect(rollout, c.provider).rolloutStatus(releases[1])).state).to.equal(2n); // open: wave 0 started at once

    // The command it names, pointed at a tracker that answers, hands them over.
    const args = retry.split(" ").slice(1, -1).concat(http.url);
    const again = await c.run([...args, "--json"]);
    expect(again.code, again.stdout + again.stderr).to.equal(0);
    expect(again.json()).to.deep.equal({ releaseId: releases[1], tracker: http.url, devices: 4, roots: [wave0.root, wave1.root] });
    expect(tracker.store.evidence.of(releases[1], label("dev-1"))).to.equal(encodeRolloutEvidence(0, wave0.proofs[0]));
  });

  it("rollout cohorts refuses cohorts whose roots are not the ledger's, and the tracker refuses a non-administrator", async () => {
    await refuses(
      ["rollout", "cohorts", releases[1], "--wave", "wave1.json", "--wave", "wave0.txt", "--tracker", http.url],
      2,
      "ROLLOUT_ROOT_MISMATCH",
      /wave 0's devices make the root/,
    );
    await refuses(
      ["rollout", "cohorts", releases[1], "--wave", "wave0.txt", "--tracker", http.url],
      2,
      "ROLLOUT_ROOT_MISMATCH",
      /1 wave\(s\) given, the rollout on the ledger has 2/,
    );
    const error = await refuses(
      ["rollout", "cohorts", releases[1], "--wave", "wave0.txt", "--wave", "wave1.json", "--tracker", http.url],
      1,
      "TRACKER_REFUSED",
      /answered 403 NOT_ADMINISTRATOR/,
      {
        OTA_PRIVATE_KEY: c.outsider.privateKey,
      },
    );
    expect(error.details.trackerCode).to.equal("NOT_ADMINISTRATOR");
  });

  it("finds the StagedRollout among the members of a release's composed policy, and refuses a policy with none", async () => {
    const own = (await c.run(["policy", "deploy", "staged-rollout", "--json"])).json().policy.address;
    const window = (await c.run(["policy", "deploy", "maintenance-window", "--window", "00:00-00:00", "--json"])).json().policy.address;
    const all = (await c.run(["policy", "deploy", "all-of", "--member", window, "--member", own, "--json"])).json().policy.address;
    expect((await c.run(["policy", "attach", all, "--release", releases[2]])).code).to.equal(0);
    const r = await c.run(["rollout", "create", releases[2], "--wave", "wave0.txt", "--no-tracker", "--json"]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.json()).to.deep.include({ policy: own, tracker: null });
    expect((await StagedRollout__factory.connect(own, c.provider).rolloutWaves(releases[2]))[0].cohortRoot).to.equal(wave0.root);

    expect((await c.run(["policy", "attach", window, "--release", releases[3]])).code).to.equal(0);
    await refuses(
      ["rollout", "create", releases[3], "--wave", "wave0.txt", "--no-tracker"],
      1,
      "NO_SUCH_POLICY",
      /is not and does not contain a staged rollout: attach one, or give --policy/,
    );
    await refuses(["rollout", "status", releases[3]], 1, "NO_SUCH_POLICY", /does not contain a staged rollout/);
    expect((await c.run(["policy", "detach", "--release", releases[3]])).code).to.equal(0);
    expect((await c.run(["policy", "detach", "--component", "acme.bootloader"])).code).to.equal(0);
    await refuses(["rollout", "status", releases[3]], 1, "NO_POLICY_ATTACHED", /has no update policy attached .* give --policy <address>/);
    const status = await c.run(["rollout", "status", releases[3], "--policy", rollout, "--json"]);
    expect(status.json()).to.deep.include({ state: "none", waves: [] });
  });

  describe("devices files and wave times (no chain)", () => {
    const now = 1_800_000_000;
    for (const [text, seconds] of [
      ["now", now],
      ["+90s", now + 90],
      ["+15m", now + 900],
      ["+2h", now + 7200],
      ["+1d", now + 86400],
      ["2027-01-15T08:00Z", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15T09:00:00+01:00", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15", Date.UTC(2027, 0, 15) / 1000],
    ] as const) {
      it(`reads the start "${text}"`, () => expect(parseStartTime(text, now, "start")).to.equal(seconds));
    }
    for (const bad of ["tomorrow", "+1w", "2027-01-15T08:00", "-5m", "15/01/2027"]) {
      it(`refuses the start "${bad}"`, () => expect(() => parseStartTime(bad, now, "start")).to.throw(/is not a time/));
    }
    it("reads ids and labels one a line, with comments and blank lines, or as a JSON array", () => {
      const hex = "0x" + "AB".repeat(32);
      expect(parseDevicesList(`# wave 0\ndev-1\n\n ${hex} # upper case\n`, "f")).to.deep.equal([label("dev-1"), hex.toLowerCase()]);
      expect(parseDevicesList(JSON.stringify(["dev-1", hex]), "f")).to.deep.equal([label("dev-1"), hex.toLowerCase()]);
    });
    it("refuses an empty list, a device twice, a malformed id and a JSON file that is not an array of strings", () => {
      expect(() => parseDevicesList("# none\n", "w.txt")).to.throw(/devices file w.txt lists no device/);
      expect(() => parseDevicesList("[]", "w.json")).to.throw(/lists no device/);
      expect(() => parseDevicesList("dev-1\ndev-1\n", "w.txt")).to.throw(/w.txt line 2: device dev-1 is already listed at w.txt line 1/);
      expect(() => parseDevicesList("0x1234\n", "w.txt")).to.throw(/w.txt line 1: "0x1234" looks like hex but is not 32 bytes/);
      expect(() => parseDevicesList("[1, 2]", "w.json")).to.throw(/must be a JSON array of strings/);
      expect(() => parseDevicesList('["a",', "w.json")).to.throw(/starts with \[ but is not JSON/);
    });
    it("splits <file>@<start> at the last @", () => {
      expect(parseWaveOption("wave.txt")).to.deep.equal({ file: "wave.txt", start: undefined });
      expect(parseWaveOption("ops@acme/wave.txt@+1h")).to.deep.equal({ file: "ops@acme/wave.txt", start: "+1h" });
      expect(() => parseWaveOption("wave.txt@")).to.throw(/the start after @ is empty/);
    });
  });
});
