import { expect } from "chai";
import { spawnSync } from "node:child_process";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");

/** What `git check-ignore` says of each path under the checkout: the ones its rules ignore. */
function ignoredOf(paths: string[]): string[] | undefined {
  const git = spawnSync("git", ["-C", ROOT, "check-ignore", "--no-index", "--", ...paths], { encoding: "utf8" });
  if (git.error || (git.status !== 0 && git.status !== 1)) return undefined; // no git, or not a checkout
  return git.stdout.split("\n").filter(Boolean);
}

/** Secrets the guides have people make in the checkout never reach the repository (CAP-11.4-b). */
describe(".gitignore: what the guides make in the checkout stays out of the repository", () => {
  const secrets = [
    ".ota-ledger/keys/0xab.key", // the author's plaintext content keys (keystoreDir)
    ".ota-ledger/artifacts/acme.bootloader-1.0.0.otae",
    ".ota-ledger/server/server.db",
    "release-signing.key",
    "admin.key",
    "multisig-owner.key",
    "keys/tracker.key",
    "keys/operator.key",
    "device/device.key",
    "dist/agent/cli/main.js",
  ];
  const kept = ["agent/files/atomicFile.ts", "docs/guides/operations.md", "contracts/UpdateRegistry.sol"];

  it("ignores the content keys, key files and keys/ folder the guides create, and dist/; not the sources", function () {
    const ignored = ignoredOf([...secrets, ...kept]);
    if (!ignored) this.skip();
    expect(ignored).to.have.members(secrets);
  });
});
