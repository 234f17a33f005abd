import { expect } from "chai";
import { describeError, EXIT } from "../../../agent/cli/reportError";
import { UpdateRegistry__factory } from "../../../typechain-types";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { PublishRefusedError } from "../../../agent/author/publishRefusal";

describe("agent/cli/reportError: how the CLI reports a failure", () => {
  const registry = UpdateRegistry__factory.createInterface();

  it("REQ-10d-i: a registry revert for a version not above the latest is explained with the versions as people write them", () => {
    const data = registry.encodeErrorResult("UpdateRegistryVersionNotIncreasing", [
      componentId("acme.firmware"),
      encodeVersion("1.2.0"),
      encodeVersion("1.2.0-rc.1"),
    ]);
    const report = describeError({ code: "CALL_EXCEPTION", data });
    expect(report.code).to.equal("UpdateRegistryVersionNotIncreasing");
    expect(report.message).to.match(/^the ledger refused: version 1\.2\.0-rc\.1 is not above the latest published 1\.2\.0 of component 0x[0-9a-f]{64}/);
    expect(report.hint).to.match(/publish a higher version/);
    expect(report.exitCode).to.equal(EXIT.failed);
  });

  it("a publication refused after the re-check (VERSION_TAKEN) is reported by its own code with exit 1, not as the revert it wraps", () => {
    const report = describeError(
      new PublishRefusedError("VERSION_TAKEN", "version 1.0.0 of acme.firmware was taken first", { details: { hint: "publish a version above 1.0.0" } }),
    );
    expect(report).to.deep.include({ code: "VERSION_TAKEN", hint: "publish a version above 1.0.0", exitCode: EXIT.failed });
  });
});
