import path from "node:path";
import { mkdirSync, writeFileSync } from "node:fs";
import type { Ledger } from "./ledger";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared, type PreparedRelease } from "../../../agent/author/publishRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";

export interface Published extends PreparedRelease {
  version: string;
  component: string;
  /** The plaintext image, as the author built it. */
  image: Buffer;
}

/**
 * The author's side, with the project's own library (agent/author), as `ota-ledger release
 * publish / submit / grant` run it: not what these tests are about, so done in-process.
 */
export class Author {
  readonly keys: ContentKeyStore;
  constructor(
    private readonly ledger: Ledger,
    private readonly dir: string,
  ) {
    this.keys = new ContentKeyStore(path.join(dir, "author-keys"));
  }

  /** An image of `size` bytes whose content depends on `seed`. */
  static image(size: number, seed: number): Buffer {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 17 + (i >> 12)) & 0xff;
    return b;
  }

  /** Packages and publishes on the ledger (nothing is submitted or granted). */
  async publish(component: string, version: string, o: { hardware?: string[]; depends?: string[]; size?: number; seed?: number } = {}): Promise<Published> {
    const image = Author.image(o.size ?? 600 * 1024, o.seed ?? hashSeed(`${component} ${version}`));
    const file = path.join(this.dir, "author-images", `${component}-${version}.bin`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, image);
    const { registry, sender, admin, domain } = this.ledger;
    const prepared = await prepareRelease(
      { registry, domain, sender, releaseSigner: admin },
      { component, version, file, hardware: o.hardware ?? ["rev-a", "rev-b"], depends: o.depends ?? [] },
      path.join(this.dir, "author-artifacts"),
    );
    await publishPrepared({ registry, sender, keys: this.keys }, prepared);
    return { ...prepared, releaseId: prepared.releaseId.toLowerCase(), version, component, image };
  }

  /** Submits the artifact to the firmware server (its real URL). */
  submit(serverUrl: string, r: Published): Promise<{ cid: string; status: number }> {
    return uploadArtifact({ serverUrl, author: this.ledger.admin }, r.releaseId, r.artifactFile);
  }

  /** Wraps the content key for these devices and hands the keys to the server. */
  async grant(serverUrl: string, r: Published, deviceIds: string[]): Promise<void> {
    const { registry, fleet, admin, domain } = this.ledger;
    await grantKeys({ registry, fleet, domain, author: admin, keys: this.keys, serverUrl }, r.releaseId, { deviceIds });
  }

  /** Publish, submit, grant: a release as an author ships it. */
  async ship(serverUrl: string, component: string, version: string, deviceIds: string[], o: Parameters<Author["publish"]>[2] = {}): Promise<Published> {
    const r = await this.publish(component, version, o);
    await this.submit(serverUrl, r);
    if (deviceIds.length > 0) await this.grant(serverUrl, r, deviceIds);
    return r;
  }
}

function hashSeed(text: string): number {
  let h = 7;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) & 0xffff;
  return h;
}
