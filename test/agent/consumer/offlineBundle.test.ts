import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BUNDLE_MAGIC, MANIFEST_MAX, openBundle, OfflineBundleRefused } from "../../../agent/consumer/offlineBundle";

/** The offline bundle's reader (agent/consumer/offlineBundle.ts): every declared length is checked before anything is allocated for it. */
describe("offline bundle reader bounds (CAP-11.1-b)", () => {
  let dir: string;
  before(async () => (dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-bundle-"))));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  const head = (version: number, manifestLength: number) => {
    const b = Buffer.alloc(14);
    BUNDLE_MAGIC.copy(b, 0);
    b.writeUInt16BE(version, 8);
    b.writeUInt32BE(manifestLength, 10);
    return b;
  };
  async function refused(name: string, bytes: Buffer, message: RegExp): Promise<void> {
    const file = path.join(dir, name);
    await fs.writeFile(file, bytes);
    const allocated: number[] = [];
    const alloc = Buffer.alloc;
    Buffer.alloc = ((size: number, ...rest: unknown[]) => (allocated.push(size), (alloc as (...a: unknown[]) => Buffer)(size, ...rest))) as typeof Buffer.alloc;
    try {
      await openBundle(file).then(
        () => expect.fail("read"),
        (err: unknown) => {
          expect(err).to.be.instanceOf(OfflineBundleRefused);
          expect((err as OfflineBundleRefused).code).to.equal("OFFLINE_BUNDLE_MALFORMED");
          expect((err as Error).message).to.match(message);
        },
      );
    } finally {
      Buffer.alloc = alloc;
    }
    expect(Math.max(0, ...allocated), "bytes allocated").to.be.at.most(64);
  }

  it("CAP-11.1-b: a huge declared manifest length is refused from the header, before any allocation for it", async () => {
    await refused("huge.otab", head(1, 0xffffffff), /declares a manifest of 4294967295 bytes \(bound 1048576\)/);
    await refused("past-end.otab", Buffer.concat([head(1, MANIFEST_MAX), Buffer.alloc(100)]), /declares a manifest of 1048576 bytes but is 114 bytes long/);
  });

  // The ciphertext's own bound, after a genuine manifest, is in test/agent/cli/offlineInstall.integration.test.ts.
  it("CAP-11.1-b: a malformed manifest is refused before the ciphertext length after it is read", async () => {
    const json = Buffer.from("{}");
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(2n ** 63n);
    // The manifest is read (2 bytes) and refused for its form first: a bundle is never half-trusted.
    await refused("ciphertext.otab", Buffer.concat([head(1, json.length), json, length]), /manifest: format/);
  });

  it("refuses a short file, another magic and another format version", async () => {
    await refused("short.otab", Buffer.from("OTA"), /shorter than the 14-byte header/);
    await refused("magic.otab", Buffer.concat([Buffer.from("NOTABUND"), Buffer.alloc(6)]), /magic/);
    await refused("version.otab", head(2, 2), /format version is 2/);
  });
});
