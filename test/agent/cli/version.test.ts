import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { main } from "../../../agent/cli/main";
import { deviceMain } from "../../../agent/cli/deviceMain";
import type { CliIo } from "../../../agent/cli/io";

const VERSION = (JSON.parse(readFileSync(path.join(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version: string }).version;

function captured(): { io: CliIo; out: () => string; err: () => string } {
  let out = "";
  let err = "";
  const io = { stdout: (s: string) => void (out += s), stderr: (s: string) => void (err += s) } as CliIo;
  return { io, out: () => out, err: () => err };
}

describe("ota-ledger --version and ota-device --version (what an operator checks after an install)", () => {
  for (const [name, run] of [
    ["ota-ledger", main],
    ["ota-device", deviceMain],
  ] as const) {
    for (const flag of ["--version", "-V"]) {
      it(`${name} ${flag} prints the package's version and exits 0`, async () => {
        const c = captured();
        expect(await run([flag], c.io)).to.equal(0);
        expect(c.out()).to.equal(`${VERSION}\n`);
        expect(c.err()).to.equal("");
      });
    }
  }

  it("--version after a command is that command's option, not the tool's (release publish --version 1.2.0 is the release's version)", async () => {
    const c = captured();
    // Without the other required options the command is refused for what is missing, not answered with the tool's version.
    const code = await main(["release", "publish", "--version", "1.2.0"], c.io);
    expect(code).to.equal(2);
    expect(c.out()).not.to.include(VERSION + "\n");
    expect(c.err()).to.match(/required option/);
  });
});
