import { expect } from "chai";
import { spawn } from "node:child_process";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

/**
 * bench:fleetsim kept honest (issue 17): a handful of simulated clients, every part in one
 * process on anvil, must each get a verified artifact and key from the real firmware server and
 * have their sealed report taken by the real tracker, with the ledger calls the projection in
 * docs/scaling.md counts on. The bench itself is the code under test, run as `npm run
 * bench:fleetsim` runs it.
 */
describe("bench:fleetsim: simulated clients follow the real protocol (CAP-11.3-b, CAP-11.4-c, PROC-5)", function () {
  this.timeout(120_000);

  it("20 clients: every artifact verified and unwrapped, every report held by the tracker, few ledger calls each", async () => {
    const args = ["--transpile-only", "bench/fleetSim.ts", "--clients", "20", "--concurrency", "10", "--decrypt-every", "5", "--in-process", "--json"];
    const child = spawn(process.execPath, [require.resolve("ts-node/dist/bin.js"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, `bench:fleetsim exited ${code}:\n${err.slice(-3000)}`).to.equal(0);
    const f = JSON.parse(out) as Record<string, unknown>;

    expect(f["run: clients done / failed"]).to.deep.equal([20, 0]);
    const steps = f["per client step ms (n, p50, p99)"] as Record<string, number[]>;
    // Every client: the ledger read, the download with every chunk checked against the ledger's
    // root, then the key unwrapped (16) or the image decrypted and its hash checked (4), and its report.
    expect(steps.ledger[0]).to.equal(20);
    expect(steps.download[0]).to.equal(20);
    expect(steps.unwrap[0] + steps.decrypt[0]).to.equal(20);
    expect(steps.decrypt[0]).to.equal(4);
    expect(steps.report[0]).to.equal(20);
    // The tracker opened, checked and stored every sealed report, naming the release as installed.
    expect(f["tracker: reports taken (held for the release)"]).to.equal(20);
    // Three signed requests a client (manifest, artifact, key), nothing more.
    expect(f["firmware server: requests"]).to.equal(60);
    expect((f["firmware server: MB served"] as number) * 1e6).to.be.greaterThan(20 * 256 * 1024 * 0.99);
    // One lens eth_call a client, to the deployed lens (its code checked once by the process: a
    // getCode and an eth_call); the server asks once per device and release, several devices a read.
    expect(f["JSON-RPC calls: clients by method"]).to.deep.equal({ eth_getCode: 1, eth_call: 21 });
    const [questions, reads] = f["firmware server: entitlement questions / ledger reads"] as number[];
    expect(questions).to.equal(20);
    expect(reads).to.be.within(1, 20);
    expect(f["JSON-RPC calls per client, every party (clients' extrapolated)"]).to.be.at.most(3);
  });
});
