import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { readDeployment, writeDeployment, deploymentPath, findDeploymentBlock, Deployment } from "../../../agent/chain/deployment";
import { InputError } from "../../../agent/core/errors";
import { deployRegistry } from "../../../scripts/lib/deployRegistry";
import { mineBlocks } from "../../helpers/mineBlocks";

describe("agent/chain/deployment: where agents find the registry", function () {
  let dir: string;
  beforeEach(async function () {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-deployment-"));
  });
  afterEach(async function () {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const sample: Deployment = {
    network: "localhost",
    chainId: 31337,
    updateRegistry: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    fleetRegistry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    deployedAtBlock: 1,
  };

  it("round-trips a deployment file, leaving no temporary file behind", async function () {
    const file = deploymentPath(dir, "localhost");
    await writeDeployment(file, sample);
    expect(await readDeployment(file)).to.deep.equal(sample);
    expect(await fs.readdir(path.dirname(file))).to.deep.equal(["localhost.json"]);
  });

  it("says how to fix a missing, unreadable or incomplete file", async function () {
    const file = path.join(dir, "x.json");
    await expect(readDeployment(file)).to.be.rejectedWith(InputError, /npm run deploy:local/);
    await fs.writeFile(file, "{ not json");
    await expect(readDeployment(file)).to.be.rejectedWith(InputError, /not valid JSON/);
    await fs.writeFile(file, JSON.stringify({ ...sample, fleetRegistry: "0x1234", chainId: "x" }));
    await expect(readDeployment(file)).to.be.rejectedWith(InputError, /chainId, fleetRegistry/);
    await fs.writeFile(file, JSON.stringify({ ...sample, updatePolicies: "0xnot" }));
    await expect(readDeployment(file)).to.be.rejectedWith(InputError, /updatePolicies/);
    await fs.writeFile(file, JSON.stringify({ ...sample, statusAnchors: 42 }));
    await expect(readDeployment(file)).to.be.rejectedWith(InputError, /statusAnchors/);
  });

  it("finds the block a contract was deployed in, and refuses an address with no code", async function () {
    await mineBlocks(ethers.provider, 5);
    const c = await ethers.deployContract("AllInStorageRegistry");
    const receipt = await c.deploymentTransaction()!.wait();
    await mineBlocks(ethers.provider, 3);
    expect(await findDeploymentBlock(ethers.provider, await c.getAddress())).to.equal(receipt!.blockNumber);
    await expect(findDeploymentBlock(ethers.provider, ethers.Wallet.createRandom().address)).to.be.rejectedWith(InputError, /no contract/);
  });

  it("deploys the registries and the update policies with the Ignition module, wired together, and writes the file", async function () {
    const root = hre.config.paths.root;
    hre.config.paths.root = dir;
    try {
      const { deployment, file } = await deployRegistry(hre);
      expect(file).to.equal(path.join(dir, "deployments", "hardhat.json"));
      expect(await readDeployment(file)).to.deep.equal(deployment);
      const fleet = await ethers.getContractAt("FleetRegistry", deployment.fleetRegistry);
      expect(await fleet.updateRegistry()).to.equal(deployment.updateRegistry);
      const policies = await ethers.getContractAt("UpdatePolicies", deployment.updatePolicies!);
      expect(await policies.updateRegistry()).to.equal(deployment.updateRegistry);
      const anchors = await ethers.getContractAt("StatusAnchors", deployment.statusAnchors!);
      expect(await anchors.updateRegistry()).to.equal(deployment.updateRegistry);
      const registry = await ethers.getContractAt("UpdateRegistry", deployment.updateRegistry);
      const [admin] = await ethers.getSigners();
      expect(await registry.defaultAdmin()).to.equal(admin.address);
      expect(await registry.defaultAdminDelay()).to.equal(2n * 24n * 3600n);
    } finally {
      hre.config.paths.root = root;
    }
  });
});
