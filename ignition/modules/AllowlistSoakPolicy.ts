import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys the second worked example of docs/writing-a-policy.md: an AllowlistSoakPolicy for the
 * releases of one UpdateRegistry (APP-II-3). Parameters: `registry` (required), the UpdateRegistry
 * address from deployments/<network>.json; `soakSeconds` (default 86400, one day), how long each
 * release soaks after its publication. Set its allowlist with `setAllowlist(root)` (the root
 * `ota-ledger policy allowlist` prints) and attach it with `ota-ledger policy attach`.
 */
export default buildModule("AllowlistSoakPolicy", (m) => {
  const registry = m.getParameter<string>("registry");
  const soakSeconds = m.getParameter<number>("soakSeconds", 86_400);
  const allowlistSoakPolicy = m.contract("AllowlistSoakPolicy", [registry, soakSeconds]);
  return { allowlistSoakPolicy };
});
