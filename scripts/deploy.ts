/**
 * npm run deploy:local: deploys the registries to the node at 127.0.0.1:8545 (npm run chain) and
 * writes deployments/localhost.json. For another network: npx hardhat run --network <name> scripts/deploy.ts
 */
import hre from "hardhat";
import { deployRegistry } from "./lib/deployRegistry";

async function main() {
  const { deployment, file } = await deployRegistry(hre, { displayUi: true });
  console.log(`UpdateRegistry ${deployment.updateRegistry}`);
  console.log(`FleetRegistry  ${deployment.fleetRegistry}`);
  console.log(`chain ${deployment.chainId}, block ${deployment.deployedAtBlock}; written to ${file}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
