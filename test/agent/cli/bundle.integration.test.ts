import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { keccak256, toUtf8Bytes } from "ethers";
import { cliChainWithServer, type CliChain, type CliChainWithServer } from "./cliHarness";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import type { ReleaseBundles } from "../../../typechain-types";

/**
 * Release bundles from the command line (ADR 0019): the author publishes two releases of two
 * components (acme.sensor-fw 2.0.0 depends on acme.bootloader ^2.0.0), creates a bundle of the new
 * ones and shows it; every input the contract would refuse is refused first with exit 2, nothing
 * sent (no block mined, the name's latest bundle version unchanged).
 */
describe("ota-ledger bundle create|show (ADR 0019: APP-II-2, REQ-10d-i, CAP-11.3-c)", function () {
  this.timeout(240_000);
  let c: CliChain;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;
  let bundles: ReleaseBundles;
  let image: string;
  const ids: Record<string, string> = {};
  let bundleId: string;

  before(async () => {
    ({ c, env, setup, stop } = await cliChainWithServer({ bundles: true }));
    bundles = c.bundles!.connect(c.provider);
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "rev-a"],
      ["hardware", "register", "rev-b"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
      ["component", "register", "acme.sensor-fw", "--provider", "1"],
      ["component", "register", "acme.modem", "--provider", "1"],
    ]);
    image = path.join(c.dir, "image.bin");
    writeFileSync(image, Buffer.alloc(4096, 0x42));
    const publish = async (component: string, version: string, extra: string[] = [], hardware = "rev-a") => {
      const r = await c.run(
        ["release", "publish", "--component", component, "--version", version, "--file", image, "--hardware", hardware, ...extra, "--json"],
        env,
      );
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      ids[`${component}@${version}`] = r.json().release.releaseId.toLowerCase();
    };
    await publish("acme.bootloader", "1.0.0");
    await publish("acme.sensor-fw", "1.0.0", ["--depends", "acme.bootloader ^1.0.0"]);
    await publish("acme.bootloader", "2.0.0");
    await publish("acme.sensor-fw", "2.0.0", ["--depends", "acme.bootloader ^2.0.0"]);
    await publish("acme.modem", "1.0.0", [], "rev-b");
  });
  after(async () => {
    await stop?.();
  });

  const latest = (name = "sensor-kit") => bundles.latestBundleVersion(1, name);
  /** Runs with --json: exit 2, the error's code and message, no block mined and no new bundle of `name`. */
  async function refused(args: string[], code: string, message: RegExp, name = "sensor-kit") {
    const [block, before] = [await c.blockNumber(), await latest(name)];
    const r = await c.run(["bundle", "create", ...args, "--json"], env);
    expect(r.code, r.stdout + r.stderr).to.equal(2);
    expect(r.json().error.code, r.stdout).to.equal(code);
    expect(r.json().error.message).to.match(message);
    expect(await c.blockNumber(), "nothing is sent").to.equal(block);
    expect(await latest(name), "no new bundle").to.equal(before);
    return r.json().error as { code: string; message: string; details: Record<string, unknown> };
  }

  it("APP-II-2 REQ-10d-i: bundle create takes component@version and a release id, one depending on the other's new version, prints the bundle and --json gives its id, members and hardware", async () => {
    const human = await c.run(["bundle", "create", "--name", "sensor-kit", "--version", "1.0.0", "acme.sensor-fw@2.0.0", ids["acme.bootloader@2.0.0"]], env);
    expect(human.code, human.stderr + human.stdout).to.equal(0);
    expect(human.stdout).to.match(/^created bundle "sensor-kit" 1\.0\.0\n {2}id 0x[0-9a-f]{64}\n {2}hardware 1\n/);
    expect(human.stdout).to.include(`member ${ids["acme.bootloader@2.0.0"]}`).and.include(`member ${ids["acme.sensor-fw@2.0.0"]}`);
    expect(human.stdout).to.match(/tx 0x[0-9a-f]{64} in block \d+/);

    const r = await c.run(
      ["bundle", "create", "--name", "sensor-kit", "--version", "2.0.0", ids["acme.sensor-fw@2.0.0"], "acme.bootloader@2.0.0", "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const out = r.json().bundle;
    bundleId = out.id.toLowerCase();
    expect(bundleId).to.equal((await bundles.bundleId(1, "sensor-kit", encodeVersion("2.0.0"))).toLowerCase());
    expect(out).to.include({ name: "sensor-kit", version: "2.0.0", provider: 1 });
    expect(out.hardware).to.deep.equal([1]);
    // In the contract's order (ascending by component), whatever order they were given in.
    const expected = [
      { releaseId: ids["acme.bootloader@2.0.0"], component: componentId("acme.bootloader"), version: "2.0.0" },
      { releaseId: ids["acme.sensor-fw@2.0.0"], component: componentId("acme.sensor-fw"), version: "2.0.0" },
    ].sort((a, b) => (BigInt(a.component) < BigInt(b.component) ? -1 : 1));
    expect(out.members.map((m: { releaseId: string; component: string; version: string }) => ({ ...m, releaseId: m.releaseId.toLowerCase() }))).to.deep.equal(
      expected,
    );
    // The ledger holds it as printed.
    const stored = await bundles.bundle(bundleId);
    expect(stored.releaseIds.map((x) => x.toLowerCase())).to.deep.equal(expected.map((m) => m.releaseId));
    expect(await latest()).to.equal(encodeVersion("2.0.0"));
  });

  it("APP-II-2: bundle show prints the bundle's name, version, provider, creator, hardware and members, and --json gives them", async () => {
    const human = await c.run(["bundle", "show", bundleId], env);
    expect(human.code, human.stderr + human.stdout).to.equal(0);
    expect(human.stdout).to.match(/^bundle "sensor-kit" 2\.0\.0\n/);
    expect(human.stdout).to.include(`id        ${bundleId}`).and.include("provider  1").and.include("hardware  1").and.include(`by ${c.admin.address}`);
    expect(human.stdout).to.include(`member    ${ids["acme.bootloader@2.0.0"]} (component ${componentId("acme.bootloader")})`);

    const r = await c.run(["bundle", "show", bundleId, "--json"], env);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const b = r.json().bundle;
    expect(b).to.include({ id: bundleId, name: "sensor-kit", version: "2.0.0", provider: 1, createdBy: c.admin.address });
    expect(b.hardware).to.deep.equal([1]);
    expect(b.members.map((m: { releaseId: string }) => m.releaseId.toLowerCase())).to.have.members([ids["acme.bootloader@2.0.0"], ids["acme.sensor-fw@2.0.0"]]);

    const unknown = await c.run(["bundle", "show", keccak256(toUtf8Bytes("no such bundle")), "--json"], env);
    expect(unknown.code, unknown.stdout).to.equal(2);
    expect(unknown.json().error.code).to.equal("BUNDLE_UNKNOWN");
    expect(unknown.json().error.message).to.match(/no bundle 0x[0-9a-f]{64} on ReleaseBundles 0x[0-9a-fA-F]{40}: check the id/);
  });

  it("APP-II-2: fewer than 2 or more than 8 members, two members of one component or one release twice are refused with exit 2, nothing sent", async () => {
    const v = ["--name", "sensor-kit", "--version", "3.0.0"];
    const one = await refused([...v, "acme.bootloader@2.0.0"], "BUNDLE_MEMBER_COUNT", /1 member given: a bundle has 2 to 8 members/);
    expect(one.details).to.include({ count: 1, min: 2, max: 8 });
    await refused(
      [...v, ...Array.from({ length: 9 }, () => "acme.bootloader@2.0.0")],
      "BUNDLE_MEMBER_COUNT",
      /9 members given: a bundle has 2 to 8 members.*at most 8/,
    );
    await refused(
      [...v, "acme.bootloader@1.0.0", "acme.sensor-fw@2.0.0", "acme.bootloader@2.0.0"],
      "BUNDLE_MEMBERS_INVALID",
      /members acme\.bootloader@1\.0\.0 and acme\.bootloader@2\.0\.0 are both releases of acme\.bootloader .*one release per component, keep one/,
    );
    await refused([...v, ids["acme.bootloader@2.0.0"], "acme.bootloader@2.0.0"], "BUNDLE_MEMBERS_INVALID", /are the same release .*name each member once/);
  });

  it("APP-II-2: a member that is not a published release (unknown id, component@version with no such release, neither form) is refused with exit 2, nothing sent", async () => {
    const v = ["--name", "sensor-kit", "--version", "3.0.0"];
    const unknownId = keccak256(toUtf8Bytes("no such release"));
    await refused(
      [...v, "acme.bootloader@2.0.0", unknownId],
      "BUNDLE_MEMBER_UNKNOWN",
      /no release has this id on the registry: give a published release's id or component@version/,
    );
    await refused(
      [...v, "acme.bootloader@2.0.0", "acme.sensor-fw@9.9.9"],
      "BUNDLE_MEMBER_UNKNOWN",
      /the ledger has no release 9\.9\.9 of acme\.sensor-fw: .*release list --component acme\.sensor-fw/,
    );
    await refused(
      [...v, "acme.bootloader@2.0.0", "acme.unknown@1.0.0"],
      "BUNDLE_MEMBER_UNKNOWN",
      /member acme\.unknown@1\.0\.0: no component acme\.unknown is registered/,
    );
    await refused([...v, "acme.bootloader@2.0.0", "acme.sensor-fw"], "BUNDLE_MEMBER_INVALID", /neither a release id .* nor component@version/);
    await refused([...v, "acme.bootloader@2.0.0", "acme.sensor-fw@two"], "BUNDLE_MEMBER_INVALID", /two is not a semantic version/);
  });

  it("APP-II-2: members whose dependency on another member is not met, or with no hardware class in common, are refused with exit 2, nothing sent", async () => {
    const v = ["--name", "sensor-kit", "--version", "3.0.0"];
    const e = await refused(
      [...v, "acme.sensor-fw@2.0.0", "acme.bootloader@1.0.0"],
      "BUNDLE_DEPENDENCY_NOT_MET",
      /acme\.sensor-fw 2\.0\.0 depends on >=2\.0\.0 <3\.0\.0 of the bundle's acme\.bootloader 1\.0\.0 \(APP-II-2\): bundle a release of that component in >=2\.0\.0 <3\.0\.0/,
    );
    expect(e.details).to.include({ memberReleaseId: ids["acme.bootloader@1.0.0"], memberVersion: "1.0.0" });
    await refused(
      [...v, "acme.modem@1.0.0", "acme.bootloader@2.0.0"],
      "BUNDLE_NO_COMMON_HARDWARE",
      /no hardware class is supported by every member .*acme\.modem 1\.0\.0: 2/,
    );
  });

  it("REQ-10d-i: a --version not above the provider's latest bundle of that name is refused with exit 2 naming the latest, nothing sent; another name has its own versions", async () => {
    const members = ["acme.sensor-fw@2.0.0", "acme.bootloader@2.0.0"];
    const same = await refused(
      ["--name", "sensor-kit", "--version", "2.0.0", ...members],
      "BUNDLE_VERSION_NOT_INCREASING",
      /--version 2\.0\.0 is not above 2\.0\.0, provider 1's latest bundle "sensor-kit" \(REQ-10d-i\): give a higher version \(ota-ledger bundle show 0x[0-9a-f]{64}/,
    );
    expect(same.details).to.include({ latest: "2.0.0", latestBundleId: bundleId });
    await refused(["--name", "sensor-kit", "--version", "1.5.0", ...members], "BUNDLE_VERSION_NOT_INCREASING", /--version 1\.5\.0 is not above 2\.0\.0/);
    await refused(["--name", "sensor-kit", "--version", "2.0.0-rc.1", ...members], "BUNDLE_VERSION_NOT_INCREASING", /2\.0\.0-rc\.1 is not above 2\.0\.0/);
    const other = await c.run(["bundle", "create", "--name", "sensor-kit-lite", "--version", "1.0.0", ...members, "--json"], env);
    expect(other.code, other.stderr + other.stdout).to.equal(0);
    expect(await latest("sensor-kit-lite")).to.equal(encodeVersion("1.0.0"));
    expect(await latest()).to.equal(encodeVersion("2.0.0"));
  });

  it("an empty or over-64-byte --name, or a --version that is not semver, is refused with exit 2, nothing sent", async () => {
    const members = ["acme.sensor-fw@2.0.0", "acme.bootloader@2.0.0"];
    await refused(["--name", "", "--version", "3.0.0", ...members], "INVALID_INPUT", /--name: the name is empty: give a name of 1 to 64 bytes/, "");
    await refused(["--name", "   ", "--version", "3.0.0", ...members], "INVALID_INPUT", /--name: the name is empty/, "   ");
    const long = "k".repeat(65);
    await refused(["--name", long, "--version", "3.0.0", ...members], "INVALID_INPUT", /the name is 65 bytes, above the limit of 64: shorten it/, long);
    const wide = "é".repeat(33); // 33 characters, 66 bytes
    await refused(["--name", wide, "--version", "3.0.0", ...members], "INVALID_INPUT", /the name is 66 bytes/, wide);
    await refused(["--name", "sensor-kit", "--version", "three", ...members], "VERSION_INVALID", /--version three is not a semantic version/);
  });

  it("CAP-11.3-c: a revoked member, by id or by component@version, is refused with exit 2 saying so, nothing sent", async () => {
    const r = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", "2.1.0", "--file", image, "--hardware", "rev-a", "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const revoked = r.json().release.releaseId.toLowerCase();
    const revoke = await c.run(["release", "revoke", revoked, "--reason", "malware found in the image"], env);
    expect(revoke.code, revoke.stderr).to.equal(0);
    const v = ["--name", "sensor-kit", "--version", "3.0.0"];
    const byId = await refused(
      [...v, "acme.sensor-fw@2.0.0", revoked],
      "BUNDLE_MEMBER_REVOKED",
      /is revoked \(CAP-11\.3-c\) and is never installed, alone or in a bundle: bundle a newer release/,
    );
    expect(byId.details).to.include({ releaseId: revoked });
    const byVersion = await refused(
      [...v, "acme.sensor-fw@2.0.0", "acme.bootloader@2.1.0"],
      "BUNDLE_MEMBER_REVOKED",
      new RegExp(`member acme\\.bootloader@2\\.1\\.0: release ${revoked} is revoked`),
    );
    expect(byVersion.details).to.include({ releaseId: revoked });
  });

  it("what only the ledger decides (the sender an author of the members' provider) is its revert, explained, exit 1", async () => {
    const [block, before] = [await c.blockNumber(), await latest()];
    const r = await c.run(["bundle", "create", "--name", "sensor-kit", "--version", "3.0.0", "acme.sensor-fw@2.0.0", "acme.bootloader@2.0.0", "--json"], {
      OTA_PRIVATE_KEY: c.outsider.privateKey,
    });
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    const error = r.json().error;
    expect(error.code).to.equal("ReleaseBundlesCreatorNotAuthor");
    expect(error.message).to.match(new RegExp(`the ledger refused: the account ${c.outsider.address} is not an author of provider 1`));
    expect(error.details.hint).to.match(/provider author add/);
    expect(await c.blockNumber()).to.equal(block);
    expect(await latest()).to.equal(before);
  });
});
