import { expect } from "chai";
import { confirm } from "../../../agent/cli/transactions";
import { expectCode } from "../../helpers/expectCode";
import { startCliChain } from "./cliHarness";

/** Issue 16: a command's transaction that is never mined (dropped by a reorganisation, priced too low) ends the command with a clear error, not a wait for ever. */
describe("agent/cli/transactions on anvil: every transaction a command sends has a deadline (issue 16)", function () {
  this.timeout(60_000);
  let c: Awaited<ReturnType<typeof startCliChain>>;
  before(async () => {
    c = await startCliChain({ node: "anvil" });
  });
  after(async () => {
    await c?.provider.send("evm_setAutomine", [true]).catch(() => {});
    await c?.stop();
  });

  it("not mined within its deadline: TX_NOT_MINED, naming the transaction and its nonce and what to check", async () => {
    await c.provider.send("evm_setAutomine", [false]);
    const started = Date.now();
    // ethers answers an identical request from a short cache: the nonce is read raw.
    const nonce = async () => Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
    const waiting = confirm(c.registry.connect(c.admin).registerHardwareClass("rev-deadline", { nonce: await nonce() }), 800);
    const err = (await waiting.catch((e: Error) => e)) as Error;
    await expectCode(Promise.reject(err), "TX_NOT_MINED");
    expect(Date.now() - started).to.be.below(5_000);
    expect(err.message).to.match(/transaction 0x[0-9a-f]{64} \(nonce \d+\) was not mined within 0.8 s/);
    expect(err.message).to.include("before you send the command again");
    await c.provider.send("evm_setAutomine", [true]);
    await c.provider.send("evm_mine", []);
    // Mined now: the same wait gives its summary.
    const { tx } = await confirm(c.registry.connect(c.admin).registerHardwareClass("rev-after", { nonce: await nonce() }));
    expect(tx.block).to.be.a("number");
  });
});
