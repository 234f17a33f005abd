import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import PilotFleetPolicyModule from "./PilotFleetPolicy";

/**
 * Composition: pilot devices first (PilotFleetPolicy), and only inside a maintenance window
 * (MaintenanceWindowPolicy), as one AllOfPolicy to attach. The pilot policy is the one the
 * PilotFleetPolicy module deploys (reused if that module already ran in this deployment).
 * Parameters: `registry` (required; give it under `$global` so that both modules see it);
 * `startMinute`, `endMinute` (minutes after UTC midnight, default 02:00-05:00) and `weekdays`
 * (bit 0 = Monday, default 0x7f, every day) of the window.
 */
export default buildModule("PilotFleetInWindow", (m) => {
  const { pilotFleetPolicy } = m.useModule(PilotFleetPolicyModule);
  const registry = m.getParameter<string>("registry");
  const startMinute = m.getParameter("startMinute", 2 * 60);
  const endMinute = m.getParameter("endMinute", 5 * 60);
  const weekdays = m.getParameter("weekdays", 0x7f);
  const maintenanceWindowPolicy = m.contract("MaintenanceWindowPolicy", [registry, startMinute, endMinute, weekdays]);
  const pilotInWindow = m.contract("AllOfPolicy", [[pilotFleetPolicy, maintenanceWindowPolicy]]);
  return { pilotFleetPolicy, maintenanceWindowPolicy, pilotInWindow };
});
