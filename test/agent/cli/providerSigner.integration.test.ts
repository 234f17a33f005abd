import { expect } from "chai";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "./cliHarness";
import { ACME_SIGNER, makeRelease, publish } from "../../helpers/registryFixture";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { encodeVersion } from "../../../agent/core/version";

/** The key the provider rotates to, and one after it. */
const NEXT_KEY = new Wallet(keccak256(toUtf8Bytes("acme release signing key, 2027")));
const THIRD_KEY = new Wallet(keccak256(toUtf8Bytes("acme release signing key, 2028")));

describe("ota-ledger provider signer rotate, retire and show (issue 19, item 7; docs/adr/0016)", function () {
  this.timeout(120_000);
  let c: CliChain;
  const component = keccak256(toUtf8Bytes("acme.bootloader"));
  let domain: ReturnType<typeof registryDomain>;

  before(async () => {
    c = await startCliChain();
    for (const args of [
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", ACME_SIGNER.address],
      ["provider", "author", "add", c.admin.address, "--provider", "1"],
      ["hardware", "register", "acme-board-rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
    ]) {
      const r = await c.run(args);
      expect(r.code, r.stderr).to.equal(0);
    }
    domain = registryDomain(31337n, await c.registry.getAddress());
  });
  after(async () => {
    await c?.stop();
  });

  it("REQ-10d-ii CAP-11.4-a: provider signer rotate adds the new key, then retires the old one; the old key's release stays valid, the next one is signed by the new key", async () => {
    const old = await publish(c.registry, c.admin, makeRelease({ component, version: encodeVersion("1.0.0") }), ACME_SIGNER, domain);
    const r = await c.run(["provider", "signer", "rotate", "1", ACME_SIGNER.address, NEXT_KEY.address.toLowerCase()]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${NEXT_KEY.address} now signs releases of provider 1`);
    expect(r.stdout).to.include(`${ACME_SIGNER.address} is retired: it signs no new release; the releases it signed stay valid`);
    expect(await c.registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(false);
    expect(await c.registry.isProviderSigner(1, NEXT_KEY.address)).to.equal(true);
    expect(await c.registry.releaseSigner(old.id)).to.deep.equal([ACME_SIGNER.address, true]);
    // The added key's transaction comes first: never a moment without a key.
    const out = (await c.run(["provider", "signer", "show", "1", ACME_SIGNER.address, "--json"])).json();
    expect(out).to.include({ provider: 1, signer: ACME_SIGNER.address, ordinal: 1, compromised: false, maySign: false });
    const added = (await c.run(["provider", "signer", "show", "1", NEXT_KEY.address, "--json"])).json();
    expect(added).to.include({ ordinal: 2, retiredAt: 0, maySign: true });
    expect(added.addedAt).to.be.at.most(out.retiredAt);
    expect((await c.run(["provider", "signer", "show", "1", THIRD_KEY.address])).stdout).to.equal(
      `${THIRD_KEY.address} was never a signing key of provider 1\n`,
    );
    const next = await publish(c.registry, c.admin, makeRelease({ component, version: encodeVersion("1.1.0") }), NEXT_KEY, domain);
    expect(await c.registry.releaseSigner(next.id)).to.deep.equal([NEXT_KEY.address, true]);
  });

  it("REQ-10d-ii: provider signer rotate refuses bad input before it sends anything (exit 2): the same key twice, an old key that cannot sign now, a new key that already signs", async () => {
    const blockBefore = await c.blockNumber();
    const same = await c.run(["provider", "signer", "rotate", "1", NEXT_KEY.address, NEXT_KEY.address]);
    expect([same.code, same.stderr]).to.deep.equal([
      2,
      `error [INVALID_INPUT]: the old and the new key are both ${NEXT_KEY.address}: give the key to retire, then the key that replaces it\n`,
    ]);
    const retired = await c.run(["provider", "signer", "rotate", "1", ACME_SIGNER.address, THIRD_KEY.address, "--json"]);
    expect(retired.code).to.equal(2);
    expect(retired.json().error).to.deep.include({ code: "SIGNER_NOT_ACTIVE" });
    expect(retired.json().error.message).to.include("(retired already)");
    const already = await c.run(["provider", "signer", "rotate", "1", ACME_SIGNER.address, NEXT_KEY.address]);
    expect(already.code).to.equal(2);
    const active = await c.run(["provider", "signer", "rotate", "1", NEXT_KEY.address, NEXT_KEY.address.slice(0, 10)]);
    expect(active.code).to.equal(2);
    expect(active.stderr).to.match(/^error \[INVALID_INPUT\]: new signer address/);
    expect(await c.blockNumber(), "nothing was sent").to.equal(blockBefore);
    expect(await c.registry.isProviderSigner(1, THIRD_KEY.address)).to.equal(false);
  });

  it("REQ-10d-ii CAP-11.3-c: provider signer retire --compromised-since invalidates what the key signed from then on and lists it; a future time or a later one is bad input (exit 2)", async () => {
    const head = await c.provider.getBlock("latest");
    const future = await c.run(["provider", "signer", "retire", "1", ACME_SIGNER.address, "--compromised-since", "+1h"]);
    expect(future.code).to.equal(2);
    expect(future.stderr).to.include("--compromised-since");
    const late = await c.run([
      "provider",
      "signer",
      "retire",
      "1",
      ACME_SIGNER.address,
      "--compromised-since",
      new Date((head!.timestamp + 7200) * 1000).toISOString(),
    ]);
    expect(late.code).to.equal(2);
    expect(late.stderr).to.include("is after the ledger's latest block");
    const never = await c.run(["provider", "signer", "retire", "1", THIRD_KEY.address, "--compromised-since", "now"]);
    expect([never.code, never.stderr.split("\n")[0]]).to.deep.equal([
      2,
      `error [SIGNER_NOT_AUTHORIZED]: ${THIRD_KEY.address} was never a signing key of provider 1`,
    ]);

    // The new key is stolen: what it signed (1.1.0) becomes invalid; the rotated-out key's 1.0.0 stays valid.
    const r = await c.run(["provider", "signer", "retire", "1", NEXT_KEY.address, "--compromised-since", "-1d", "--json"]);
    expect(r.code, r.stdout).to.equal(0);
    const out = r.json();
    expect(out).to.include({ provider: 1, signer: NEXT_KEY.address, action: "retire" });
    expect(out.invalidated.map((x: { version: string }) => x.version)).to.deep.equal(["1.1.0"]);
    expect(await c.registry.releaseSigner(out.invalidated[0].id)).to.deep.equal([NEXT_KEY.address, false]);
    expect(await c.registry.isProviderSigner(1, NEXT_KEY.address)).to.equal(false);
    // Again with the same time: only an earlier one can be given.
    const again = await c.run([
      "provider",
      "signer",
      "retire",
      "1",
      NEXT_KEY.address,
      "--compromised-since",
      new Date(out.compromisedSince * 1000).toISOString(),
    ]);
    expect([again.code, again.stderr.split("\n")[0]]).to.deep.equal([
      2,
      `error [SIGNER_COMPROMISED]: ${NEXT_KEY.address} is already retired as compromised since ${new Date(out.compromisedSince * 1000).toISOString()}: only an earlier time can be given`,
    ]);
    // The registry's own refusal is explained too: a compromised key cannot be added back.
    const readd = await c.run(["provider", "signer", "add", "1", NEXT_KEY.address]);
    expect(readd.code).to.equal(1);
    expect(readd.stderr).to.include("[UpdateRegistrySignerCompromised]");
    expect(readd.stderr).to.include("hint: add a freshly generated key");
  });

  it("provider signer retire without --compromised-since retires a key that may sign, and refuses one that cannot (exit 2)", async () => {
    await c.run(["provider", "signer", "add", "1", THIRD_KEY.address]);
    const r = await c.run(["provider", "signer", "retire", "1", THIRD_KEY.address]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${THIRD_KEY.address} is retired from provider 1: it signs no new release; the releases it signed stay valid`);
    const again = await c.run(["provider", "signer", "retire", "1", THIRD_KEY.address]);
    expect([again.code, again.stderr.split("\n")[0]]).to.deep.equal([
      2,
      `error [SIGNER_NOT_ACTIVE]: ${THIRD_KEY.address} is not a key that may sign releases of provider 1 now: nothing to retire`,
    ]);
  });
});
