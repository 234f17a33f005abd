import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys the worked example of docs/writing-a-policy.md: a PilotFleetPolicy for the releases of
 * one UpdateRegistry (APP-II-3). Parameters: `registry` (required), the UpdateRegistry address
 * from deployments/<network>.json; `pilotDevices` (default none), the device ids (bytes32) of the
 * first pilot group, at most 64. Attach the result with `ota-ledger policy attach`.
 */
export default buildModule("PilotFleetPolicy", (m) => {
  const registry = m.getParameter<string>("registry");
  const pilotDevices = m.getParameter<string[]>("pilotDevices", []);
  const pilotFleetPolicy = m.contract("PilotFleetPolicy", [registry, pilotDevices]);
  return { pilotFleetPolicy };
});
