import { expect } from "chai";
import { isDeliveryFault } from "../../../agent/core/updateOutcome";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { main } from "../../../agent/cli/main";
import { freePort, type CliResult } from "./cliHarness";
import { BOOTLOADER, postReport, sealedReport, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { encodeVersion } from "../../../agent/core/version";
import { sealMessage } from "../../../agent/crypto/sealedMessage";

const TOKEN = "cli-test-token-0123456789abcdef";
const labelId = (label: string) => keccak256(toUtf8Bytes(label));

describe("ota-ledger tracker and fleet status (the status tracker's CLI)", function () {
  this.timeout(180_000);
  let t: TrackerChain;
  let keyFile: string;
  let moduleKey: string;
  let port: number;
  let env: Record<string, string>;
  const moduleLabel = "cli server module";
  // A reports 1.0.0 (flagged vulnerable: outdated and vulnerable), B reports 1.1.0 (up to date),
  // C is enrolled through the CLI and never reports (unreachable).
  const devA = testDevice("cli A", 1, "plant-1");
  const devB = testDevice("cli B", 2, "plant-2");
  const devC = testDevice("cli C", 1, "plant-1");
  let boot1: { id: string; version: string };
  let boot11: { id: string; version: string };

  before(async () => {
    t = await trackerChain();
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
    boot11 = await t.publish(BOOTLOADER, "1.1.0", [1, 2]);
    await t.enrol([devA, devB]);
    await t.send((o) => t.registry.flagVulnerable(boot1.id, "CVE-2026-0002", o));
    // The fixture counts the administrator's nonces itself: from here on, only the CLI sends.
    const enrol = await t.c.run([
      "device",
      "enrol",
      "--id",
      "cli C",
      "--public-key",
      devC.record.publicKey,
      "--hardware",
      "rev-a",
      "--network",
      "plant-1",
      "--region",
      "eu-west",
    ]);
    expect(enrol.code, enrol.stderr).to.equal(0);
    keyFile = path.join(t.c.dir, "keys", "tracker.key");
    const made = await t.c.run(["tracker", "keygen", "keys/tracker.key", "--json"]);
    expect(made.code, made.stderr).to.equal(0);
    moduleKey = (await fs.readFile(keyFile, "utf8")).trim();
    expect(made.stdout).not.to.include(moduleKey.slice(2));
    expect(made.json()).to.deep.equal({ keyFile, signer: new Wallet(moduleKey).address, publicKey: new Wallet(moduleKey).signingKey.compressedPublicKey });
    expect((await fs.stat(keyFile)).mode & 0o777).to.equal(0o600);
    port = await freePort();
    env = { OTA_TRACKER_MODULE: moduleLabel, OTA_TRACKER_KEY_FILE: "keys/tracker.key", OTA_TRACKER_PORT: String(port) };
  });
  after(async () => {
    await t?.c.stop();
  });

  /** `tracker start` run in-process, stopped by the test rather than by a signal. */
  async function startTracker(extra: Record<string, string | undefined> = {}) {
    let stdout = "";
    let stderr = "";
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const merged = Object.fromEntries(Object.entries({ OTA_RPC_URL: t.c.url, ...env, ...extra }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    let ended: number | undefined;
    const done = main(["tracker", "start", "--json"], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: merged,
      cwd: t.c.dir,
      isTTY: false,
      untilStopped: () => stopped,
    }).then((code) => (ended = code));
    while (stdout === "" && ended === undefined) await new Promise((r) => setTimeout(r, 25));
    const result = (): CliResult => ({ code: ended ?? -1, stdout, stderr, json: () => JSON.parse(stdout) });
    return {
      ended: () => ended,
      result,
      stop: async () => {
        stop();
        await done;
        return result();
      },
    };
  }

  it("tracker register refuses a key without TRACKER_ROLE, naming the role and how to grant it; nothing is sent", async () => {
    const before = await t.c.blockNumber();
    const r = await t.c.run(["tracker", "register", "--json"], { ...env, OTA_PRIVATE_KEY: t.c.outsider.privateKey });
    expect(r.code, r.stdout).to.equal(1);
    const { error } = r.json();
    expect(error.code).to.equal("TRACKER_ROLE_MISSING");
    expect(error.message).to.equal(`the account ${t.c.outsider.address} does not hold TRACKER_ROLE, which registering a tracker module needs`);
    expect(error.details.hint).to.include(`ota-ledger tracker grant ${t.c.outsider.address}`);
    expect(await t.c.blockNumber()).to.equal(before);
  });

  it("tracker start refuses a module that is not registered, and leaves nothing listening", async () => {
    const run = await startTracker();
    expect(run.ended()).to.equal(2);
    expect(run.result().json().error.code).to.equal("MODULE_NOT_REGISTERED");
    expect(run.result().json().error.message).to.include("ota-ledger tracker register");
    const probe = await t.c.run(["fleet", "status"], env);
    expect(probe.code).to.equal(1);
    expect(probe.stderr).to.include("TRACKER_UNREACHABLE");
  });

  it("CAP-11.2-d: tracker register puts the module's signer, public key and parent on the ledger, once", async () => {
    const wallet = new Wallet(moduleKey);
    const r = await t.c.run(["tracker", "register", "--json"], env);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const out = r.json();
    expect(out.module).to.deep.equal({
      id: labelId(moduleLabel),
      label: moduleLabel,
      signer: wallet.address,
      publicKey: wallet.signingKey.compressedPublicKey,
      parent: null,
      role: "server",
    });
    expect(out.alreadyRegistered).to.equal(false);
    expect(out.tx.hash).to.match(/^0x[0-9a-f]{64}$/);
    expect(r.stdout).not.to.include(moduleKey.slice(2));
    const [signer, parent] = await t.c.fleet.trackerModule(labelId(moduleLabel));
    expect(signer).to.equal(wallet.address);
    expect(parent).to.equal(ZeroHash);

    const again = await t.c.run(["tracker", "register"], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include("is already registered with this key as a server module: nothing sent");
  });

  it("CAP-11.2-a/b: tracker start serves the fleet; fleet status, outdated, vulnerable and list read it; Ctrl-C stops it", async () => {
    const run = await startTracker({ OTA_TRACKER_TOKEN: TOKEN });
    try {
      expect(run.ended(), run.result().stderr + run.result().stdout).to.equal(undefined);
      const started = run.result().json();
      const url = `http://127.0.0.1:${port}`;
      expect(started).to.deep.include({ url, dashboard: `${url}/`, api: `${url}/v1`, openapi: `${url}/openapi.json`, apiToken: "required" });
      expect(started.module).to.deep.include({ id: labelId(moduleLabel), role: "server", signer: new Wallet(moduleKey).address, parent: null });
      expect((await fetch(`${url}/openapi.json`)).status).to.equal(200);

      const pub = { id: labelId(moduleLabel), publicKey: new Wallet(moduleKey).signingKey.compressedPublicKey };
      for (const [d, release] of [
        [devA, boot1],
        [devB, boot11],
      ] as const) {
        const res = await postReport(url, await sealedReport(d, pub, [{ component: BOOTLOADER, release }]));
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
      }
      const withToken = { ...env, OTA_TRACKER_TOKEN: TOKEN };

      const status = await t.c.run(["fleet", "status", "--json"], withToken);
      expect(status.code, status.stderr + status.stdout).to.equal(0);
      const s = status.json();
      expect(s.tracker).to.equal(url);
      expect(s.module).to.deep.include({ id: labelId(moduleLabel), role: "server" });
      expect(s.summary.total).to.equal(3);
      expect(s.summary.counts).to.deep.equal({
        upToDate: 1,
        outdated: 1,
        vulnerable: 1,
        failed: 0,
        blocked: 0,
        refused: 0,
        safeMode: 0,
        unreachable: 1,
        suspended: 0,
      });
      const byNetwork = Object.fromEntries(s.summary.byNetwork.map((n: { network: string }) => [n.network, n]));
      expect(byNetwork["plant-1"]).to.deep.include({ total: 2, outdated: 1, vulnerable: 1, unreachable: 1, upToDate: 0 });
      expect(byNetwork["plant-2"]).to.deep.include({ total: 1, upToDate: 1, outdated: 0 });

      const table = await t.c.run(["fleet", "status"], withToken);
      expect(table.code, table.stderr).to.equal(0);
      expect(table.stdout).to.match(/^status\s+devices\n/m);
      expect(table.stdout).to.match(/^outdated\s+1$/m);
      expect(table.stdout).to.match(/^network\s+total\s+up to date\s+outdated\s+vulnerable\s+failed\s+blocked\s+refused\s+safe mode\s+unreachable$/m);
      expect(table.stdout).to.match(/^plant-1\s+2\s+0\s+1\s+1\s+0\s+0\s+0\s+0\s+1$/m);
      expect(table.stdout).not.to.include("need a person"); // no device in safe mode

      const outdated = await t.c.run(["fleet", "outdated", "--json"], withToken);
      expect(outdated.code, outdated.stderr + outdated.stdout).to.equal(0);
      expect(outdated.json().total).to.equal(1);
      const [a] = outdated.json().devices;
      expect(a).to.deep.include({ id: devA.record.id.toLowerCase(), hardwareClass: 1, hardwareName: "rev-a", network: "plant-1", region: "eu-west" });
      expect(a.statuses).to.deep.equal(["outdated", "vulnerable"]);
      // Names beside the ids (issue 19): --json keeps every id.
      expect(a.installed).to.deep.equal([{ component: BOOTLOADER, componentName: "acme.bootloader", version: "1.0.0", releaseId: boot1.id }]);
      expect(a.lastSeen).to.be.a("number");

      const vulnerable = await t.c.run(["fleet", "vulnerable"], withToken);
      expect(vulnerable.code, vulnerable.stderr).to.equal(0);
      expect(vulnerable.stdout).to.match(/^device\s+hardware\s+network\s+region\s+statuses\s+installed\s+last seen$/m);
      expect(vulnerable.stdout).to.include(devA.record.id.toLowerCase());
      // The table names the hardware class and the release run, not their hashes (issue 19).
      expect(vulnerable.stdout).to.match(
        new RegExp(`^${devA.record.id.toLowerCase()}\\s+rev-a\\s+plant-1\\s+eu-west\\s+\\S+\\s+acme\\.bootloader 1\\.0\\.0\\s`, "m"),
      );
      expect(vulnerable.stdout).not.to.include(BOOTLOADER.slice(0, 10));
      expect(vulnerable.stdout).to.include("1 vulnerable device(s)");

      const none = await t.c.run(["fleet", "outdated", "--network", "plant-2", "--json"], withToken);
      expect(none.json()).to.deep.include({ total: 0, devices: [] });

      // One device per page: --all pages through every device, a page alone says how to go on.
      const all = await t.c.run(["fleet", "list", "--limit", "1", "--all", "--json"], withToken);
      expect(all.code, all.stderr + all.stdout).to.equal(0);
      expect(all.json().total).to.equal(3);
      expect(all.json().devices.map((d: { id: string }) => d.id)).to.have.members([
        devA.record.id.toLowerCase(),
        devB.record.id.toLowerCase(),
        labelId("cli C"),
      ]);
      const page = await t.c.run(["fleet", "list", "--status", "unreachable", "--limit", "1"], withToken);
      expect(page.code, page.stderr).to.equal(0);
      expect(page.stdout).to.include(labelId("cli C"));
      expect(page.stdout).to.include("never");

      const noToken = await t.c.run(["fleet", "status"], env);
      expect(noToken.code).to.equal(1);
      expect(noToken.stderr).to.equal(
        `error [TRACKER_UNAUTHORIZED]: the tracker at ${url} needs an API token: set tracker.apiToken (OTA_TRACKER_TOKEN) to the token the tracker runs with\n`,
      );
      const badToken = await t.c.run(["fleet", "outdated"], { ...env, OTA_TRACKER_TOKEN: "x".repeat(20) });
      expect(badToken.code).to.equal(1);
      expect(badToken.stderr).to.include("refused the API token: set tracker.apiToken (OTA_TRACKER_TOKEN)");

      // A second module on the same data folder (another port) is refused before it touches the database.
      const second = await startTracker({ OTA_TRACKER_TOKEN: TOKEN, OTA_TRACKER_PORT: String(await freePort()) });
      const refused = await second.stop();
      expect(refused.code).to.equal(1);
      expect(refused.json().error.code).to.equal("ALREADY_RUNNING");
      expect(refused.json().error.message).to.match(/is in use by a tracker module in process \d+/);
    } finally {
      const stopped = await run.stop();
      expect(stopped.code, stopped.stderr).to.equal(0);
      expect(stopped.stderr).to.include("tracker: stopped");
    }
    const after = await t.c.run(["fleet", "status"], env);
    expect(after.code).to.equal(1);
    expect(after.stderr).to.equal(
      `error [TRACKER_UNREACHABLE]: the tracker at http://127.0.0.1:${port} does not answer (ECONNREFUSED): ` +
        "start it (`ota-ledger tracker start`) or fix tracker.url (OTA_TRACKER_URL or --tracker)\n",
    );
  });

  it("CAP-11.1-b CAP-11.2-a: fleet status counts the devices in safe mode and says they need a person; fleet list --status safe-mode lists them until a report out of safe mode", async () => {
    // D is enrolled through the CLI (id "cli D") with a key of its own; it then reports in safe mode.
    const devD = testDevice("cli D", 2, "plant-2");
    const id = labelId("cli D").toLowerCase();
    const enrol = await t.c.run([
      "device",
      "enrol",
      "--id",
      "cli D",
      "--public-key",
      devD.record.publicKey,
      "--hardware",
      "rev-b",
      "--network",
      "plant-2",
      "--region",
      "eu-west",
    ]);
    expect(enrol.code, enrol.stderr).to.equal(0);
    const run = await startTracker();
    try {
      expect(run.ended(), run.result().stderr + run.result().stdout).to.equal(undefined);
      const url = `http://127.0.0.1:${port}`;
      const pub = { id: labelId(moduleLabel), publicKey: new Wallet(moduleKey).signingKey.compressedPublicKey };
      const report = (counter: number, safeMode: boolean, installed: StatusReport["installed"]) => {
        const body: StatusReport = { deviceId: id, counter, installed, lastResult: null, needs: [], declined: [], safeMode };
        return sealMessage(
          { kind: REPORT_KIND, from: id, to: pub.id, issuedAt: Date.now(), body },
          { kind: "device", privateKey: devD.key.privateKey },
          pub.publicKey,
        );
      };
      const taken = await postReport(url, await report(1, true, []));
      expect(taken.status, JSON.stringify(taken.body)).to.equal(200);

      const status = await t.c.run(["fleet", "status", "--json"], env);
      expect(status.code, status.stderr + status.stdout).to.equal(0);
      const summary = status.json().summary;
      expect(summary.total).to.equal(4);
      expect(summary.counts).to.deep.include({ safeMode: 1, upToDate: 1 }); // B only: D in safe mode is not up to date
      expect(summary.byNetwork.find((n: { network: string }) => n.network === "plant-2")).to.deep.include({ total: 2, upToDate: 1, safeMode: 1 });
      const table = await t.c.run(["fleet", "status"], env);
      expect(table.code, table.stderr).to.equal(0);
      expect(table.stdout).to.match(/^safe mode\s+1$/m);
      expect(table.stdout).to.match(/^network\s+total\s+up to date\s+outdated\s+vulnerable\s+failed\s+blocked\s+refused\s+safe mode\s+unreachable$/m);
      expect(table.stdout).to.match(/^plant-2\s+2\s+1\s+0\s+0\s+0\s+0\s+0\s+1\s+0$/m);
      expect(table.stdout).to.include(
        "1 device(s) in safe mode need a person to install a release by hand (`ota-ledger device install`): `ota-ledger fleet list --status safe-mode`",
      );

      const listed = await t.c.run(["fleet", "list", "--status", "safe-mode", "--json"], env);
      expect(listed.code, listed.stderr + listed.stdout).to.equal(0);
      expect(listed.json()).to.deep.include({ status: "safe-mode", total: 1 });
      expect(listed.json().devices[0]).to.deep.include({ id, statuses: ["safe-mode"], safeMode: true, installed: [], network: "plant-2" });
      const human = await t.c.run(["fleet", "list", "--status", "safe-mode"], env);
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.include(id);
      expect(human.stdout).to.include("(safe mode: unknown)");
      expect(human.stdout).to.include("1 safe-mode device(s)");
      const upToDate = await t.c.run(["fleet", "list", "--status", "up-to-date", "--json"], env);
      expect(upToDate.json().devices.map((d: { id: string }) => d.id)).not.to.include(id);

      // A person installed a release by hand: the next report is out of safe mode.
      const installed = [{ component: BOOTLOADER, version: encodeVersion(boot11.version).toString(), releaseId: boot11.id, slot: "a" as const }];
      expect((await postReport(url, await report(2, false, installed))).status).to.equal(200);
      const after = await t.c.run(["fleet", "list", "--status", "safe-mode"], env);
      expect(after.code, after.stderr).to.equal(0);
      expect(after.stdout).to.include("no safe-mode devices (0 match)");
      const again = await t.c.run(["fleet", "status"], env);
      expect(again.stdout).to.match(/^safe mode\s+0$/m);
      expect(again.stdout).not.to.include("need a person");
    } finally {
      const stopped = await run.stop();
      expect(stopped.code, stopped.stderr).to.equal(0);
    }
  });

  it("fleet commands refuse bad options before asking the tracker", async () => {
    const cases: [string[], RegExp][] = [
      [["fleet", "list", "--status", "broken"], /--status: "broken" is not a status: give one of up-to-date, outdated/],
      [["fleet", "outdated", "--limit", "0"], /--limit: "0" is not an id: give a whole number from 1 to 1000/],
      [["fleet", "outdated", "--network", "x".repeat(40)], /--network: "x+" is longer than 31 bytes/],
      [["fleet", "status", "--tracker", "127.0.0.1:8700"], /--tracker "127\.0\.0\.1:8700" must be an http\(s\) URL/],
    ];
    for (const [args, message] of cases) {
      const r = await t.c.run(args, env);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.stderr, args.join(" ")).to.match(new RegExp(`^error \\[INVALID_INPUT\\]: ${message.source}`));
    }
  });

  it("refuses bad tracker configuration, naming the field and the fix", async () => {
    const file = path.join(t.c.dir, "tracker-config.json");
    const withFile = async (tracker: unknown, extra: Record<string, string> = {}) => {
      await fs.writeFile(file, JSON.stringify({ tracker }));
      return t.c.run(["--config", file, "config", "show"], extra);
    };
    // Run one after the other: the file cases share one file.
    const cases: [() => Promise<CliResult>, string | RegExp][] = [
      [() => t.c.run(["config", "show"], { OTA_TRACKER_PORT: "70000" }), "OTA_TRACKER_PORT must be a TCP port (1..65535)"],
      [
        () => t.c.run(["config", "show"], { OTA_TRACKER_MODULE: "0x1234" }),
        /^error \[CONFIG_INVALID\]: OTA_TRACKER_MODULE must be a module id: 0x followed by 64 hex digits \(not zero\), or a label/,
      ],
      [() => t.c.run(["config", "show"], { OTA_TRACKER_PARENT_URL: "ftp://x" }), /^error \[CONFIG_INVALID\]: OTA_TRACKER_PARENT_URL must be an http\(s\) URL/],
      [
        () => t.c.run(["config", "show"], { OTA_TRACKER_TOKEN: "short secret" }),
        /^error \[CONFIG_INVALID\]: OTA_TRACKER_TOKEN must be a token of 16 to 256 characters without spaces/,
      ],
      [
        () => t.c.run(["config", "show"], { OTA_TRACKER_KEY_FILE: "nokey" }),
        /the key file .*nokey \(OTA_TRACKER_KEY_FILE\) cannot be read \(ENOENT\): fix the path/,
      ],
      [
        () => t.c.run(["config", "show"], { OTA_TRACKER_PARENT_URL: "http://10.0.0.1:8700" }),
        /tracker\.parent\.id is missing: an intermediate module needs both .*set OTA_TRACKER_PARENT_ID/,
      ],
      [() => withFile({ prot: 8700 }), /unknown field "tracker\.prot": remove it or fix its spelling/],
      [() => withFile({ networks: ["x".repeat(40)] }), /tracker\.networks\.0 must be a network label of at most 31 bytes/],
      [() => withFile({ livenessMs: -5 }), /tracker\.livenessMs must be a time in milliseconds \(a positive integer\)/],
      [() => withFile({ privateKey: "0x1234" }), /tracker\.privateKey must be a private key: 0x followed by 64 hex digits/],
      [() => withFile({ moduleId: "tracker-a", parent: { id: "tracker-a", url: "http://10.0.0.1:8700" } }), /tracker\.parent\.id is this module's own id/],
    ];
    for (const [run, message] of cases) {
      const r = await run();
      expect(r.code, String(message)).to.equal(2);
      expect(r.stderr, String(message)).to.match(
        typeof message === "string" ? new RegExp(`^error \\[CONFIG_INVALID\\]: ${message.replace(/[().]/g, "\\$&")}`) : message,
      );
      expect(r.stderr).not.to.include("short secret");
    }
    const noModule = await t.c.run(["tracker", "start"], { OTA_TRACKER_KEY_FILE: "keys/tracker.key" });
    expect(noModule.code).to.equal(2);
    expect(noModule.stderr).to.match(
      /^error \[TRACKER_MODULE_MISSING\]: tracker\.moduleId is missing: set OTA_TRACKER_MODULE, or tracker\.moduleId in ota-ledger\.json/,
    );
    const noKey = await t.c.run(["tracker", "register"], { OTA_TRACKER_MODULE: moduleLabel });
    expect(noKey.code).to.equal(2);
    expect(noKey.stderr).to.match(/^error \[TRACKER_KEY_MISSING\]: the tracker module's key is missing: set OTA_TRACKER_KEY_FILE .*not the administrator's/);
  });

  it("config show shows the tracker section with the module key and the token hidden", async () => {
    const r = await t.c.run(["config", "show", "--json"], {
      ...env,
      OTA_TRACKER_TOKEN: TOKEN,
      OTA_TRACKER_PARENT_ID: "upstream",
      OTA_TRACKER_PARENT_URL: "http://10.0.0.1:8700",
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).not.to.include(moduleKey.slice(2));
    expect(r.stdout).not.to.include(TOKEN);
    expect(r.json().config.tracker).to.deep.equal({
      host: "127.0.0.1",
      port,
      dataDir: path.join(t.c.dir, ".ota-ledger", "tracker"),
      url: `http://127.0.0.1:${port}`,
      moduleId: labelId(moduleLabel),
      moduleLabel,
      parent: { id: labelId("upstream"), url: "http://10.0.0.1:8700" },
      networks: [],
      firmwareServers: [],
      privateKey: "(set, hidden)",
      signer: new Wallet(moduleKey).address,
      apiToken: "(set, hidden)",
    });
    const human = await t.c.run(["config", "show"], env);

    expect(human.stdout).to.match(/^tracker\s+\{"host":"127\.0\.0\.1","port":\d+/m);
    expect(human.stdout).not.to.include(moduleKey.slice(2));
  });

  it("tracker grant gives an account TRACKER_ROLE; it registers a module of its own, not under another operator's server, whose owner registers the intermediate (issue 15)", async () => {
    const granted = await t.c.run(["tracker", "grant", t.c.outsider.address, "--json"]);
    expect(granted.code, granted.stderr + granted.stdout).to.equal(0);
    expect(granted.json()).to.deep.include({ account: t.c.outsider.address, role: "TRACKER_ROLE", granted: true });
    const again = await t.c.run(["tracker", "grant", t.c.outsider.address]);
    expect(again.stdout).to.include("already holds TRACKER_ROLE: nothing sent");

    const own = await t.c.run(["tracker", "register", "--json"], {
      OTA_PRIVATE_KEY: t.c.outsider.privateKey,
      OTA_TRACKER_MODULE: "cli second operator's server",
      OTA_TRACKER_PRIVATE_KEY: Wallet.createRandom().privateKey,
    });
    expect(own.code, own.stderr + own.stdout).to.equal(0);
    expect(await t.c.fleet.trackerModuleOwner(labelId("cli second operator's server"))).to.equal(t.c.outsider.address);
    // The server module is the first operator's: the second may not grow its subtree.
    const foreign = await t.c.run(["tracker", "register", "--parent", moduleLabel, "--json"], {
      OTA_PRIVATE_KEY: t.c.outsider.privateKey,
      OTA_TRACKER_MODULE: "cli foreign module",
      OTA_TRACKER_PRIVATE_KEY: Wallet.createRandom().privateKey,
    });
    expect(foreign.code).to.equal(1);
    expect(foreign.json().error).to.deep.include({ code: "FleetRegistryNotTrackerModuleOwner" });

    const childKey = Wallet.createRandom();
    const child = await t.c.run(["tracker", "register", "--parent", moduleLabel, "--json"], {
      OTA_TRACKER_MODULE: "cli intermediate module",
      OTA_TRACKER_PRIVATE_KEY: childKey.privateKey,
    });
    expect(child.code, child.stderr + child.stdout).to.equal(0);
    expect(child.json().module).to.deep.include({ role: "intermediate", parent: labelId(moduleLabel), signer: childKey.address });
    const [, parent] = await t.c.fleet.trackerModule(labelId("cli intermediate module"));
    expect(parent).to.equal(labelId(moduleLabel));

    const unknownParent = await t.c.run(["tracker", "register", "--parent", "nobody"], {
      OTA_TRACKER_MODULE: "cli orphan",
      OTA_TRACKER_PRIVATE_KEY: Wallet.createRandom().privateKey,
    });
    expect(unknownParent.code).to.equal(1);
    expect(unknownParent.stderr).to.match(/^error \[FleetRegistryUnknownTrackerModule\]: the ledger refused: tracker module 0x[0-9a-f]{64} is not registered/);
    expect(unknownParent.stderr).to.include("hint: register the parent module first");
  });

  it("runs as a program: `tracker start` serves until SIGINT, then stops cleanly with exit code 0", async () => {
    const bin = path.join(__dirname, "..", "..", "..", "bin", "ota-ledger.js");
    const child = spawn(process.execPath, [bin, "tracker", "start"], {
      cwd: t.c.dir,
      env: { PATH: process.env.PATH, OTA_RPC_URL: t.c.url, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => resolve(code));
    });
    try {
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const deadline = Date.now() + 60_000;
      while (!output.includes("Ctrl-C stops it") && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(output).to.include(`on http://127.0.0.1:${port}`);
      const health = (await (await fetch(`http://127.0.0.1:${port}/v1/health`)).json()) as { module: { id: string; role: string } };
      expect(health.module).to.deep.include({ id: labelId(moduleLabel), role: "server" });
      child.kill("SIGINT");
      expect(await exited, output).to.equal(0);
      expect(output).to.include("tracker: stopped");
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited.catch(() => {});
      }
    }
  });

  it("DEP-8.2.2: fleet simulate --report-to makes the simulated devices client modules of the tracker: they report at start and are listed", async () => {
    const run = await startTracker();
    try {
      const url = `http://127.0.0.1:${port}`;
      const sim = await t.c.run([
        "fleet",
        "simulate",
        "--devices",
        "2",
        "--hardware",
        "rev-a",
        "--components",
        "acme.bootloader",
        "--enrol",
        "--network",
        "plant-3",
        "--report-to",
        url,
        "--seed",
        "cli report-to",
        "--once",
        "--json",
      ]);
      expect(sim.code, sim.stderr).to.equal(0);
      const listed = await t.c.run(["fleet", "list", "--network", "plant-3", "--json"], { OTA_TRACKER_URL: url });
      expect(listed.code, listed.stderr).to.equal(0);
      const devices = listed.json().devices as { statuses: string[]; lastSeen: number | null; upstream: string; lastCode: string | null }[];
      expect(devices).to.have.length(2);
      for (const d of devices) {
        expect(d.lastSeen).to.be.a("number");
        // A simulated device that tried a release no server delivers to it is listed blocked too, by a delivery fault (issue 15).
        expect(d.statuses.filter((s) => s !== "blocked")).to.deep.equal(["up-to-date"]);
        if (d.statuses.includes("blocked")) expect(isDeliveryFault(d.lastCode ?? ""), String(d.lastCode)).to.equal(true);
        expect(d.upstream).to.equal(labelId(moduleLabel).toLowerCase());
      }
      const wrong = await t.c.run([
        "fleet",
        "simulate",
        "--devices",
        "1",
        "--hardware",
        "rev-a",
        "--components",
        "acme.bootloader",
        "--report-to",
        "http://127.0.0.1:9",
        "--once",
      ]);
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.include("TRACKER_UNREACHABLE");
    } finally {
      await run.stop();
    }
  });
});
