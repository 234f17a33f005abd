import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, Wallet, encodeBytes32String, keccak256, toUtf8Bytes, type TypedDataDomain } from "ethers";
import { FleetRegistry__factory, UpdateRegistry__factory, type FleetRegistry, type UpdateRegistry } from "../../agent/chain/contracts";
import { fetchRelease, type LedgerRelease } from "../../agent/chain/releaseEvents";
import { componentId, type ReleaseRecord } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { computeReleaseId, registryDomain, signRelease } from "../../agent/crypto/releaseSignature";
import type { DeviceCredential } from "../../agent/crypto/deviceCredential";

/** The test mnemonic's accounts, funded on Hardhat's node and anvil alike. */
const TEST_MNEMONIC = "test test test test test test test test test test test junk";
const account = (i: number) => HDNodeWallet.fromPhrase(TEST_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey;

/** A provider's release signing key (not an account that sends transactions). */
export const NODE_SIGNER = new Wallet(keccak256(toUtf8Bytes("proven ledger signing key")));
export const NODE_COMPONENT = componentId("acme.bootloader");

/**
 * The project's registries deployed on a running development node (anvil, or Hardhat's node) at
 * `url`, in this process, with a small catalogue: provider 1 "Acme Devices" with its signing key
 * and author, hardware class 1, the component acme.bootloader. For the tests and benches that need
 * a node of their own (eth_getProof, a lying endpoint in front of it); not for a real network.
 */
export async function registryOnNode(url: string, chainId = 31337) {
  const provider = new JsonRpcProvider(url, Network.from(chainId), { staticNetwork: true, pollingInterval: 50 });
  const admin = new NonceManager(new Wallet(account(0), provider));
  const author = new NonceManager(new Wallet(account(1), provider));
  const adminAddress = await admin.getAddress();
  const registry = (await (await new UpdateRegistry__factory(admin).deploy(3 * 24 * 3600, adminAddress)).waitForDeployment()) as UpdateRegistry;
  const fleet = (await (await new FleetRegistry__factory(admin).deploy(await registry.getAddress())).waitForDeployment()) as FleetRegistry;
  const domain: TypedDataDomain = registryDomain(chainId, await registry.getAddress());
  const send = async (tx: Promise<{ wait(): Promise<unknown> }>) => (await tx).wait();
  await send(registry.registerProvider("Acme Devices"));
  await send(registry.addProviderSigner(1, NODE_SIGNER.address));
  await send(registry.registerAuthor(await author.getAddress(), 1));
  await send(registry.registerHardwareClass("acme-board-rev-a"));
  await send(registry.registerComponent("acme.bootloader", 1));

  let published = 0;
  /** Publishes acme.bootloader `version` (signed by NODE_SIGNER) and returns it as the agents read it. */
  const publish = async (version: string): Promise<LedgerRelease> => {
    published += 1;
    const record: ReleaseRecord = {
      provider: 1,
      component: NODE_COMPONENT,
      version: encodeVersion(version),
      fileHash: keccak256(toUtf8Bytes(`image ${version} ${published}`)),
      fileLink: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
      fileName: "firmware.bin",
      fileSize: 1_048_576n,
      merkleRoot: keccak256(toUtf8Bytes(`chunks ${version} ${published}`)),
      hardware: [1],
      dependencies: [],
    };
    const signature = await signRelease(NODE_SIGNER, domain, record);
    await send(registry.connect(author).publishRelease(record, NODE_SIGNER.address, signature, []));
    return (await fetchRelease(registry, domain, computeReleaseId(domain, record)))!;
  };

  /** Enrols a device alone, with hardware class 1. */
  const enrol = async (label: string): Promise<{ privateKey: string; credential: DeviceCredential }> => {
    const key = new Wallet(keccak256(toUtf8Bytes(`device key ${label}`)));
    const record = {
      id: keccak256(toUtf8Bytes(label)),
      publicKey: key.signingKey.compressedPublicKey,
      hardwareClass: 1,
      network: encodeBytes32String("factory-floor"),
      region: encodeBytes32String("eu-west"),
    };
    await send(fleet.enrolDevice(record));
    return { privateKey: key.privateKey, credential: { record, batchId: 0, proof: [] } };
  };

  return {
    provider,
    registry,
    fleet,
    domain,
    publish,
    enrol,
    revoke: (id: string) => send(registry.revokeRelease(id, "withdrawn in a test")),
    flag: (id: string) => send(registry.flagVulnerable(id, "advisory in a test")),
    bar: () => send(registry.barProvider(1, "barred in a test")),
    suspend: (deviceId: string) => send(fleet.suspendDevice(deviceId, "suspended in a test")),
    close: () => provider.destroy(),
  };
}
