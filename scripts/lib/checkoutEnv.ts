/**
 * The variables of a development run that would let a shipped agent (the device bundle, the packed
 * install) lean on the checkout: module paths, ts-node's hooks, Node options, the project's OTA_*
 * settings and Hardhat's network. The tests and the bench of what ships start it without them.
 */
export function checkoutVariables(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(env).filter(
    (k) => k.startsWith("OTA_") || k.startsWith("TS_NODE_") || k === "NODE_PATH" || k === "NODE_OPTIONS" || k === "HARDHAT_NETWORK",
  );
}
