import { expect } from "chai";
import type { BaseContract } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

/** A call that must fail: what to set up, the call itself, and the exact custom error it raises. */
export interface RejectionCase<F, P = undefined> {
  name: string;
  run: (f: F) => Promise<{ call: () => Promise<unknown>; error: string; args?: unknown[]; probe?: P }>;
}

/**
 * Shared behaviour of every restricted or checked function: one test per case asserting that the
 * call reverts with exactly the named custom error (and arguments, when given) and that the state
 * `snapshot` reads is the same after the rejected call as before it. The call is made inside
 * `expect`, so its promise is never left unhandled.
 */
export function itRejectsWithoutChange<F, P = undefined>(
  cases: RejectionCase<F, P>[],
  options: {
    fixture: () => Promise<F>;
    contract: (f: F) => BaseContract;
    snapshot: (f: F, probe?: P) => Promise<unknown>;
  },
): void {
  for (const c of cases) {
    it(`rejects ${c.name}`, async function () {
      const f = await loadFixture(options.fixture);
      const { call, error, args, probe } = await c.run(f);
      const before = await options.snapshot(f, probe);
      const assertion = expect(call()).to.be.revertedWithCustomError(options.contract(f), error);
      if (args) await assertion.withArgs(...args);
      else await assertion;
      expect(await options.snapshot(f, probe)).to.deep.equal(before);
    });
  }
}
