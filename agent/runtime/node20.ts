/**
 * What Node 20 lacks and our dependencies call, installed once per process by its entry point,
 * before anything else is loaded: `import "<path>/agent/runtime/node20";` first in
 * agent/cli/main.ts (ota-ledger, bin/ota-ledger.js), agent/cli/deviceMain.ts (ota-device),
 * scripts/demo.ts, the bench entries that start a firmware server (bench/consumer.ts, e2e.ts,
 * fleetSim.ts, and the children bench/lib/parts.ts and fleetSimParts.ts) and hardhat.config.ts
 * (every test, in the mocha process and in --parallel workers).
 *
 * Node 20 is the oldest Node the project runs on (20, 22, 24). `Promise.withResolvers` came in
 * Node 22; Helia 7 and libp2p, which the firmware server's embedded IPFS store loads through
 * agent/storage/esm.ts, call it. On Node 22 and later this installs nothing.
 */
export function installNode20Polyfills(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers === "function") return;
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

installNode20Polyfills();
