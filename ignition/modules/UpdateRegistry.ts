import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys the UpdateRegistry, and beside it the FleetRegistry, UpdatePolicies, StatusAnchors and ReleaseBundles that use its roles and releases, ReleaseDeltas
 * (a release's delta artifacts, ADR 0018),
 * and an UpdateCheckLens (stateless, no query: deployed as an ordinary contract) that agents call
 * instead of sending its creation code with every read.
 * Parameters: `admin` (default: the deploying account) becomes default admin and administrator;
 * `adminTransferDelay` (seconds, default 2 days) is how long a default-admin transfer waits.
 */
export default buildModule("UpdateRegistry", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const adminTransferDelay = m.getParameter("adminTransferDelay", 2 * 24 * 60 * 60);
  const updateRegistry = m.contract("UpdateRegistry", [adminTransferDelay, admin]);
  const fleetRegistry = m.contract("FleetRegistry", [updateRegistry]);
  const updatePolicies = m.contract("UpdatePolicies", [updateRegistry]);
  const statusAnchors = m.contract("StatusAnchors", [updateRegistry]);
  const releaseBundles = m.contract("ReleaseBundles", [updateRegistry]);
  const updateCheckLens = m.contract("UpdateCheckLens", [[]]);
  const releaseDeltas = m.contract("ReleaseDeltas", [updateRegistry]);
  return { updateRegistry, fleetRegistry, updatePolicies, statusAnchors, releaseBundles, updateCheckLens, releaseDeltas };
});
