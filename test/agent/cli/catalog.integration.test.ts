import { expect } from "chai";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "./cliHarness";
import { ACME_SIGNER, makeRelease, publish } from "../../helpers/registryFixture";
import { registryDomain } from "../../../agent/crypto/releaseSignature";

describe("ota-ledger provider, hardware and component commands", function () {
  this.timeout(120_000);
  let c: CliChain;
  const signer = Wallet.createRandom().address;
  const author = Wallet.createRandom().address;

  before(async () => {
    c = await startCliChain();
  });
  after(async () => {
    await c?.stop();
  });

  it("registers a provider and prints its id, the tx hash and the gas used", async () => {
    const r = await c.run(["provider", "register", "Acme Devices"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^registered provider 1 "Acme Devices"\ntx 0x[0-9a-f]{64} in block \d+, gas used \d+\n$/);
    expect(await c.registry.providerCount()).to.equal(1n);
  });

  it("with --json, prints one object with the new id and the transaction", async () => {
    const out = (await c.run(["provider", "register", "Globex", "--json"])).json();
    expect(out.provider).to.deep.equal({ id: 2, name: "Globex" });
    expect(out.tx.hash).to.match(/^0x[0-9a-f]{64}$/);
    expect(out.tx.block).to.be.a("number");
    expect(out.tx.gasUsed).to.be.a("number").and.above(21_000);
  });

  it("adds and removes a provider's release-signing key", async () => {
    const added = await c.run(["--json", "provider", "signer", "add", "1", signer]);
    expect(added.json()).to.include({ provider: 1, signer, action: "add" });
    expect(await c.registry.isProviderSigner(1, signer)).to.equal(true);
    const removed = await c.run(["provider", "signer", "remove", "1", signer]);
    expect(removed.stdout).to.include(`${signer} may no longer sign releases of provider 1`);
    expect(await c.registry.isProviderSigner(1, signer)).to.equal(false);
  });

  it("makes an account an author of a provider and removes it, naming the provider", async () => {
    const added = await c.run(["provider", "author", "add", author.toLowerCase(), "--provider", "2"]);
    expect(added.stdout).to.include(`${author} is now an author of provider 2`);
    expect(await c.registry.authorProvider(author)).to.equal(2n);
    const removed = await c.run(["provider", "author", "remove", author, "--json"]);
    expect(removed.json()).to.include({ author, provider: 2, action: "remove" });
    expect(await c.registry.authorProvider(author)).to.equal(0n);
  });

  it("bars a provider with a reason, shows it barred, and lifts the bar", async () => {
    const barred = await c.run(["provider", "bar", "2", "--reason", "shipped malware"]);
    expect(barred.stdout).to.include("provider 2 is barred: shipped malware");
    expect((await c.run(["provider", "show", "2", "--json"])).json()).to.deep.equal({
      provider: { id: 2, name: "Globex", barred: true },
    });
    expect((await c.run(["provider", "unbar", "2"])).stdout).to.include("provider 2 is no longer barred");
    expect((await c.run(["provider", "show", "2"])).stdout).to.equal('provider 2 "Globex"\n  barred  no\n');
  });

  it("shows a provider without a private key (reading needs none)", async () => {
    const r = await c.run(["provider", "show", "1"], { OTA_PRIVATE_KEY: undefined });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('provider 1 "Acme Devices"');
  });

  it("registers hardware classes and lists them", async () => {
    expect((await c.run(["hardware", "list"])).stdout).to.equal("no hardware classes registered\n");
    expect((await c.run(["hardware", "register", "acme-board-rev-a"])).stdout).to.match(/^registered hardware class 1 "acme-board-rev-a"\n/);
    expect((await c.run(["hardware", "register", "acme-board-rev-b", "--json"])).json().hardwareClass).to.deep.equal({
      id: 2,
      name: "acme-board-rev-b",
    });
    expect((await c.run(["hardware", "list", "--json"])).json()).to.deep.equal({
      hardwareClasses: [
        { id: 1, name: "acme-board-rev-a" },
        { id: 2, name: "acme-board-rev-b" },
      ],
    });
    expect((await c.run(["hardware", "list"])).stdout).to.equal("    1  acme-board-rev-a\n    2  acme-board-rev-b\n");
  });

  it("registers a component for a provider and prints its id (keccak256 of the name)", async () => {
    const id = keccak256(toUtf8Bytes("acme.bootloader"));
    const r = await c.run(["component", "register", "acme.bootloader", "--provider", "1", "--json"]);
    expect(r.json().component).to.deep.equal({ id, name: "acme.bootloader", provider: 1 });
    expect((await c.registry.component(id)).owner).to.equal(1n);
  });

  it("shows a component's owner and that it has no release yet", async () => {
    const r = await c.run(["component", "show", "acme.bootloader"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('owner     provider 1 "Acme Devices"');
    expect(r.stdout).to.include("latest    none");
    const json = (await c.run(["component", "show", "acme.bootloader", "--json"])).json();
    expect(json.component).to.include({ name: "acme.bootloader", releaseCount: 0, latest: null });
    expect(json.component.owner).to.deep.equal({ id: 1, name: "Acme Devices" });
  });

  it("shows a component's latest release once one is published", async () => {
    await c.run(["provider", "signer", "add", "1", ACME_SIGNER.address]);
    await c.run(["provider", "author", "add", c.admin.address, "--provider", "1"]);
    const domain = registryDomain(31337n, await c.registry.getAddress());
    const component = keccak256(toUtf8Bytes("acme.bootloader"));
    const { id } = await publish(c.registry, c.admin, makeRelease({ component, hardware: [1, 2] }), ACME_SIGNER, domain);
    const json = (await c.run(["component", "show", "acme.bootloader", "--json"])).json();
    expect(json.component.releaseCount).to.equal(1);
    expect(json.component.latest).to.include({ id, version: "1.0.0", status: "active" });
    expect((await c.run(["component", "show", "acme.bootloader"])).stdout).to.include(`latest    1.0.0 (active), release ${id}`);
  });

  it("explains an unknown component as the registry's refusal", async () => {
    const r = await c.run(["component", "show", "acme.nothing"]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error \[UpdateRegistryUnknownComponent\]: the ledger refused: no component has id 0x[0-9a-f]{64}/);
    expect(r.stderr).to.include("hint: check the name");
  });
});
