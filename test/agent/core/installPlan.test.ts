import { expect } from "chai";
import fc from "fast-check";
import { keccak256, toUtf8Bytes } from "ethers";
import { componentId, Dependency, dependsOn } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { checkCandidate, ReleaseStatus } from "../../../agent/core/updateCheck";
import type { DevicePolicy } from "../../../agent/core/devicePolicy";
import { CatalogueRelease, indexCatalogue, InstallPlan, InstallPlanError, planInstall, PlanInput } from "../../../agent/core/installPlan";

const V = encodeVersion;
const FW = componentId("acme.sensor-fw");
const BOOT = componentId("acme.bootloader");
const LIB = componentId("acme.crypto-lib");
const APP = componentId("acme.app");
const NAMES: Record<string, string> = { [FW]: "fw", [BOOT]: "boot", [LIB]: "lib", [APP]: "app" };

/** A release of `component` at `version`; hardware [1, 3] and active unless told otherwise. */
function rel(
  component: string,
  version: string,
  o: { hardware?: number[]; deps?: Dependency[]; status?: ReleaseStatus; barred?: boolean } = {},
): CatalogueRelease {
  return {
    id: keccak256(toUtf8Bytes(`${component} ${version}`)),
    record: {
      provider: 1,
      component,
      version: V(version),
      fileHash: keccak256(toUtf8Bytes(`image ${version}`)),
      fileLink: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
      fileName: "fw.bin",
      fileSize: 10n,
      merkleRoot: keccak256(toUtf8Bytes("root")),
      hardware: o.hardware ?? [1, 3],
      dependencies: o.deps ?? [],
    },
    status: o.status ?? "active",
    providerBarred: o.barred ?? false,
  };
}

/** The installed entry for a release of the catalogue (so its status and dependencies are known). */
const has = (r: CatalogueRelease) => ({ component: r.record.component, version: r.record.version, releaseId: r.id });

function plan(
  releases: CatalogueRelease[],
  installed: PlanInput["device"]["installed"],
  components: string[],
  extra: { policy?: DevicePolicy; failedReleases?: string[]; hardwareClass?: number; targets?: PlanInput["targets"] } = {},
): InstallPlan {
  return planInstall({
    catalogue: indexCatalogue(releases),
    device: { hardwareClass: extra.hardwareClass ?? 3, installed, policy: extra.policy, failedReleases: extra.failedReleases },
    components,
    targets: extra.targets,
  });
}

/** Steps as "name@version reason", for exact and readable assertions. */
const show = (p: InstallPlan) => p.steps.map((s) => `${NAMES[s.component]}@${fmt(s.version)} ${s.reason}`);
const fmt = (v: bigint) => `${v >> 48n}.${(v >> 32n) & 0xffffn}.${(v >> 16n) & 0xffffn}`;
const POLICY: DevicePolicy = { maxLedgerAgeSeconds: 3600 };

describe("installPlan: the tracker's resolver (CAP-11.2-c)", function () {
  const fw1 = rel(FW, "1.0.0");
  const boot1 = rel(BOOT, "1.2.0");

  it("plans nothing for a device that is up to date (REQ-10e-i)", function () {
    const p = plan([fw1, boot1, rel(FW, "0.9.0")], [has(fw1), has(boot1)], [FW, BOOT]);
    expect(p.steps).to.deep.equal([]);
    expect(p.unchanged).to.deep.equal([FW, BOOT].sort().map((component) => ({ component, code: "UP_TO_DATE" })));
  });

  it("picks the newest release that supports the device's hardware (APP-II-2)", function () {
    const releases = [fw1, rel(FW, "3.0.0", { hardware: [2] }), rel(FW, "2.0.0", { hardware: [1, 3] })];
    expect(show(plan(releases, [has(fw1)], [FW]))).to.deep.equal(["fw@2.0.0 outdated"]);
    expect(show(plan(releases, [has(fw1)], [FW], { hardwareClass: 2 }))).to.deep.equal(["fw@3.0.0 outdated"]);
    const none = plan(releases, [has(fw1)], [FW], { hardwareClass: 7 });
    expect(none).to.deep.equal({ steps: [], unchanged: [{ component: FW, code: "NO_RELEASE_FOR_HARDWARE" }] });
  });

  it("skips revoked, vulnerable and barred releases; vulnerable only when the policy allows it (REQ-10d-ii)", function () {
    const releases = [
      fw1,
      rel(FW, "4.0.0", { status: "revoked" }),
      rel(FW, "3.0.0", { status: "vulnerable" }),
      rel(FW, "2.5.0", { barred: true }),
      rel(FW, "2.0.0"),
    ];
    expect(show(plan(releases, [has(fw1)], [FW]))).to.deep.equal(["fw@2.0.0 outdated"]);
    expect(show(plan(releases, [has(fw1)], [FW], { policy: { ...POLICY, allowVulnerable: true } }))).to.deep.equal(["fw@3.0.0 outdated"]);
    const untrusted = plan(releases.slice(0, 4), [has(fw1)], [FW]);
    expect(untrusted).to.deep.equal({ steps: [], unchanged: [{ component: FW, code: "NO_TRUSTED_RELEASE" }] });
  });

  it("never plans a downgrade, even when a dependant would need one (REQ-10d-i)", function () {
    const boot3 = rel(BOOT, "3.0.0");
    const releases = [boot3, rel(BOOT, "2.0.0"), fw1, rel(FW, "2.0.0", { deps: [dependsOn(BOOT, "^2.0.0")] })];
    const p = plan(releases, [has(boot3), has(fw1)], [FW, BOOT]);
    expect(p.steps).to.deep.equal([]);
    expect(p.unchanged).to.deep.include({ component: FW, code: "DEPENDENCY_UNSATISFIABLE" });
    expect(p.unchanged).to.deep.include({ component: BOOT, code: "UP_TO_DATE" });
  });

  it("upgrades a dependency first, in the same plan, and installs a missing one (APP-II-2)", function () {
    const fw2 = rel(FW, "2.0.0", { deps: [dependsOn(BOOT, "^2.0.0"), dependsOn(LIB, "^1.0.0")] });
    const releases = [fw1, fw2, boot1, rel(BOOT, "2.1.0"), rel(BOOT, "3.0.0"), rel(LIB, "1.4.0"), rel(LIB, "2.0.0")];
    const p = plan(releases, [has(fw1), has(boot1)], [FW]);
    // Dependencies first (the device checks them against what is installed), ordered by id among themselves.
    const deps = [
      [BOOT, "boot@2.1.0 dependency"],
      [LIB, "lib@1.4.0 dependency"],
    ].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(show(p)).to.deep.equal([...deps.map(([, s]) => s), "fw@2.0.0 outdated"]);
    expect(p.unchanged).to.deep.equal([]);
  });

  it("resolves a range conflict between two dependants by backtracking to releases that agree", function () {
    const lib1 = rel(LIB, "1.0.0");
    const app1 = rel(APP, "1.0.0");
    const releases = [
      lib1,
      rel(LIB, "2.0.0"),
      rel(LIB, "2.5.0"),
      rel(LIB, "3.0.0"),
      app1,
      rel(APP, "1.5.0", { deps: [dependsOn(LIB, "^2.0.0")] }),
      rel(APP, "2.0.0", { deps: [dependsOn(LIB, "^3.0.0")] }),
      fw1,
      rel(FW, "2.0.0", { deps: [dependsOn(LIB, "^2.0.0")] }),
    ];
    // Whichever of app and fw the search meets first, both move: app settles on 1.5.0.
    const p = plan(releases, [has(lib1), has(app1), has(fw1)], [APP, FW]);
    const rest = [
      [APP, "app@1.5.0 outdated"],
      [FW, "fw@2.0.0 outdated"],
    ].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(show(p)).to.deep.equal(["lib@2.5.0 dependency", ...rest.map(([, s]) => s)]);
  });

  it("reports an unsatisfiable conflict: the component with the lower id moves, the other stays", function () {
    const lib1 = rel(LIB, "1.0.0");
    const app1 = rel(APP, "1.0.0");
    const releases = [
      lib1,
      rel(LIB, "2.0.0"),
      rel(LIB, "3.0.0"),
      app1,
      rel(APP, "2.0.0", { deps: [dependsOn(LIB, "^3.0.0")] }),
      fw1,
      rel(FW, "2.0.0", { deps: [dependsOn(LIB, "^2.0.0")] }),
    ];
    const p = plan(releases, [has(lib1), has(app1), has(fw1)], [FW, APP]);
    const [first, second] = [APP, FW].sort();
    const lib = first === APP ? "lib@3.0.0 dependency" : "lib@2.0.0 dependency";
    expect(show(p)).to.deep.equal([lib, `${NAMES[first]}@2.0.0 outdated`]);
    expect(p.unchanged).to.deep.equal([{ component: second, code: "DEPENDENCY_UNSATISFIABLE" }]);
  });

  it("keeps the dependencies of installed components that it does not upgrade", function () {
    const lib1 = rel(LIB, "1.0.0");
    const app1 = rel(APP, "1.0.0", { deps: [dependsOn(LIB, "^1.0.0")] });
    const releases = [lib1, rel(LIB, "2.0.0"), app1, fw1, rel(FW, "2.0.0", { deps: [dependsOn(LIB, "^2.0.0")] })];
    // app 1.0.0 needs lib ^1 and has no newer release: lib cannot move, so fw cannot either.
    const p = plan(releases, [has(lib1), has(app1), has(fw1)], [FW]);
    expect(p).to.deep.equal({ steps: [], unchanged: [{ component: FW, code: "DEPENDENCY_UNSATISFIABLE" }] });
    // With an app release that accepts lib 2, app moves too, as a dependency of the plan.
    const more = [...releases, rel(APP, "1.1.0", { deps: [dependsOn(LIB, "^2.0.0")] })];
    expect(show(plan(more, [has(lib1), has(app1), has(fw1)], [FW]))).to.have.members(["lib@2.0.0 dependency", "app@1.1.0 dependency", "fw@2.0.0 outdated"]);
  });

  it("honours a pin: the pinned version only, PINNED when it holds the component back (CAP-11.1-a-vi)", function () {
    const releases = [fw1, rel(FW, "1.5.0"), rel(FW, "2.0.0")];
    const pinned = (v: string) => ({ ...POLICY, pins: { [FW]: V(v).toString() } });
    expect(show(plan(releases, [has(fw1)], [FW], { policy: pinned("1.5.0") }))).to.deep.equal(["fw@1.5.0 outdated"]);
    expect(plan(releases, [has(fw1)], [FW], { policy: pinned("1.0.0") })).to.deep.equal({
      steps: [],
      unchanged: [{ component: FW, code: "PINNED" }],
    });
  });

  it("with securityOnly, updates only components whose installed release is flagged (CAP-11.1-a-vi)", function () {
    const policy = { ...POLICY, securityOnly: true };
    const active = plan([fw1, rel(FW, "2.0.0")], [has(fw1)], [FW], { policy });
    expect(active).to.deep.equal({ steps: [], unchanged: [{ component: FW, code: "NOT_A_SECURITY_FIX" }] });
    for (const status of ["vulnerable", "revoked"] as const) {
      const flagged = { ...fw1, status };
      expect(show(plan([flagged, rel(FW, "2.0.0")], [has(flagged)], [FW], { policy }))).to.deep.equal([`fw@2.0.0 ${status}-installed`]);
    }
  });

  it("skips a release that already failed on this device and takes the next one", function () {
    const fw2 = rel(FW, "2.0.0");
    expect(show(plan([fw1, rel(FW, "1.5.0"), fw2], [has(fw1)], [FW], { failedReleases: [fw2.id.toUpperCase().replace("0X", "0x")] }))).to.deep.equal([
      "fw@1.5.0 outdated",
    ]);
    expect(plan([fw1, fw2], [has(fw1)], [FW], { failedReleases: [fw2.id] }).unchanged).to.deep.equal([{ component: FW, code: "PREVIOUSLY_FAILED" }]);
  });

  it("installs a managed component that is not installed yet, and follows an administrator's target", function () {
    expect(show(plan([rel(APP, "1.0.0")], [], [APP]))).to.deep.equal(["app@1.0.0 new-release"]);
    const releases = [fw1, rel(FW, "1.5.0"), rel(FW, "2.0.0")];
    expect(show(plan(releases, [has(fw1)], [FW], { targets: { [FW]: V("1.5.0") } }))).to.deep.equal(["fw@1.5.0 outdated"]);
    expect(show(plan(releases, [has(fw1)], [FW], { targets: { [FW]: "latest" } }))).to.deep.equal(["fw@2.0.0 outdated"]);
    expect(plan(releases, [has(fw1)], [FW], { targets: { [FW]: V("1.7.0") } }).unchanged).to.deep.equal([{ component: FW, code: "TARGET_NOT_AVAILABLE" }]);
  });

  it("refuses releases that depend on each other with DEPENDENCY_CYCLE", function () {
    const releases = [fw1, boot1, rel(FW, "2.0.0", { deps: [dependsOn(BOOT, "^2.0.0")] }), rel(BOOT, "2.0.0", { deps: [dependsOn(FW, "^2.0.0")] })];
    let err: unknown;
    try {
      plan(releases, [has(fw1), has(boot1)], [FW, BOOT]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InstallPlanError);
    expect((err as InstallPlanError).code).to.equal("DEPENDENCY_CYCLE");
    expect((err as InstallPlanError).details.releases).to.have.length(2);
  });

  it("stops a search past its bound with SEARCH_LIMIT rather than running on", function () {
    const p = planInstall({
      catalogue: indexCatalogue([fw1, rel(FW, "2.0.0")]),
      device: { hardwareClass: 3, installed: [has(fw1)] },
      components: [FW],
      maxSearchSteps: 0,
    });
    expect(p).to.deep.equal({ steps: [], unchanged: [{ component: FW, code: "SEARCH_LIMIT" }] });
  });

  describe("properties (fast-check)", function () {
    const COMPONENTS = [FW, BOOT, LIB, APP];
    const version = fc.integer({ min: 1, max: 4 }).map((n) => `${n}.0.0`);
    const dep = fc.record({
      component: fc.constantFrom(...COMPONENTS),
      range: fc.oneof(
        version.map((v) => `^${v}`),
        version.map((v) => `>=${v}`),
      ),
    });
    const release = fc.record({
      component: fc.constantFrom(...COMPONENTS),
      version,
      hardware: fc.constantFrom([1], [3], [1, 3]),
      deps: fc.array(dep, { maxLength: 2 }),
      status: fc.constantFrom<ReleaseStatus>("active", "active", "active", "vulnerable", "revoked"),
      barred: fc.constantFrom(false, false, false, true),
    });
    const world = fc.record({
      releases: fc.array(release, { maxLength: 14 }),
      installed: fc.array(fc.record({ component: fc.constantFrom(...COMPONENTS), version }), { maxLength: 4 }),
      managed: fc.subarray(COMPONENTS),
      failed: fc.array(fc.nat(13), { maxLength: 2 }),
      securityOnly: fc.boolean(),
      allowVulnerable: fc.boolean(),
      hardwareClass: fc.constantFrom(1, 3),
    });

    /** Builds a catalogue (one release per component and version, as the ledger allows) and a device. */
    function build(w: typeof world extends fc.Arbitrary<infer T> ? T : never) {
      const seen = new Set<string>();
      const releases: CatalogueRelease[] = [];
      for (const r of w.releases) {
        if (seen.has(`${r.component} ${r.version}`)) continue;
        seen.add(`${r.component} ${r.version}`);
        const deps = new Map<string, Dependency>();
        for (const d of r.deps) if (d.component !== r.component) deps.set(d.component, dependsOn(d.component, d.range));
        releases.push(rel(r.component, r.version, { hardware: [...r.hardware], deps: [...deps.values()], status: r.status, barred: r.barred }));
      }
      const installed = new Map<string, { component: string; version: bigint; releaseId?: string }>();
      for (const i of w.installed) {
        const known = releases.find((r) => r.record.component === i.component && r.record.version === V(i.version));
        installed.set(i.component, known ? has(known) : { component: i.component, version: V(i.version) });
      }
      const failedReleases = w.failed.filter((n) => n < releases.length).map((n) => releases[n].id);
      const policy: DevicePolicy = { ...POLICY, securityOnly: w.securityOnly, allowVulnerable: w.allowVulnerable };
      const input: PlanInput = {
        catalogue: indexCatalogue(releases),
        device: { hardwareClass: w.hardwareClass, installed: [...installed.values()], policy, failedReleases },
        components: w.managed,
      };
      return { releases, input };
    }

    it("every step passes the device's own check in order, moves forward, and the end state satisfies all ranges (REQ-10d-i, APP-II-2, CAP-11.2-c)", function () {
      fc.assert(
        fc.property(world, (w) => {
          const { releases, input } = build(w);
          let p: InstallPlan;
          try {
            p = planInstall(input);
          } catch (e) {
            expect(e).to.be.instanceOf(InstallPlanError);
            expect((e as InstallPlanError).code).to.equal("DEPENDENCY_CYCLE");
            return;
          }
          const byId = new Map(releases.map((r) => [r.id, r]));
          const now = new Map(input.device.installed.map((i) => [i.component, i]));
          const statusOf = (c: string) => byId.get(now.get(c)?.releaseId ?? "")?.status;
          expect(new Set(p.steps.map((s) => s.component)).size, "one step per component").to.equal(p.steps.length);
          for (const step of p.steps) {
            const before = now.get(step.component)?.version;
            if (before !== undefined) expect(step.version > before, "no step is a downgrade or a reinstall").to.equal(true);
            const installedStatus = Object.fromEntries([...now.keys()].flatMap((c) => (statusOf(c) ? [[c, statusOf(c)!]] : [])));
            const check = checkCandidate({
              release: { ...byId.get(step.releaseId)!, signatureValid: true },
              ledger: { headTimestamp: 1000 },
              device: {
                hardwareClass: input.device.hardwareClass,
                installed: [...now.values()],
                floors: {},
                failedReleases: input.device.failedReleases!,
                installedStatus,
              },
              policy: input.device.policy!,
              now: 1000,
            });
            expect(check.ok, check.ok ? "" : `${check.error.code}: ${check.error.message}`).to.equal(true);
            now.set(step.component, has(byId.get(step.releaseId)!));
          }
          if (p.steps.length > 0) {
            // What runs in the end (planned or kept) has every known dependency in range.
            for (const { releaseId } of now.values()) {
              for (const d of byId.get(releaseId ?? "")?.record.dependencies ?? []) {
                const v = now.get(d.component)?.version;
                expect(v !== undefined && v >= d.minVersion && v < d.maxVersion, "dependency range holds").to.equal(true);
              }
            }
          }
          const reported = [...p.steps.map((s) => s.component).filter((c) => input.components.includes(c)), ...p.unchanged.map((u) => u.component)];
          expect(reported.sort(), "each managed component is either planned or explained").to.deep.equal([...input.components].sort());
          // Deterministic whatever the catalogue's order.
          const shuffled = planInstall({ ...input, catalogue: indexCatalogue([...releases].reverse()) });
          expect(shuffled).to.deep.equal(p);
        }),
        { numRuns: 400 },
      );
    });
  });
});
