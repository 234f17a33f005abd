import { expect } from "chai";
import { DEFAULT_DEVICE_POLICY, isInWindow, nextWindowStart, parseDevicePolicy } from "../../../agent/core/devicePolicy";
import { InputError } from "../../../agent/core/errors";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";

const FW = componentId("acme.sensor-fw");
const FW_UPPER = "0x" + FW.slice(2).toUpperCase();
const V123 = encodeVersion("1.2.3").toString();
const DAY = Date.UTC(2025, 0, 15) / 1000; // a midnight UTC
const at = (hour: number, minute = 0) => DAY + hour * 3600 + minute * 60;

/** Runs `fn`, which must throw an InputError for `field` whose message matches `pattern`. */
function expectPolicyError(fn: () => unknown, field: string, pattern: RegExp) {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(InputError);
    const e = error as InputError;
    expect(e.code).to.equal("DEVICE_POLICY_INVALID");
    expect(e.details).to.deep.equal({ field });
    expect(e.message).to.match(new RegExp(`^device policy ${field.replace(/[.()]/g, "\\$&")}: `));
    expect(e.message).to.match(pattern);
    return;
  }
  expect.fail(`expected an InputError for ${field}`);
}

describe("agent/core/devicePolicy: the device's own choices (CAP-11.1-a-vi)", function () {
  describe("parseDevicePolicy", function () {
    it("accepts every field and returns them, with pin keys in lower case", function () {
      const policy = parseDevicePolicy({
        window: { startHourUtc: 22, endHourUtc: 4 },
        pins: { [FW_UPPER]: V123 },
        securityOnly: true,
        allowVulnerable: false,
        maxLedgerAgeSeconds: 600,
        maxBlocksBehindUpstream: 4,
      });
      expect(policy).to.deep.equal({
        maxBlocksBehindUpstream: 4,
        window: { startHourUtc: 22, endHourUtc: 4 },
        pins: { [FW]: V123 },
        securityOnly: true,
        allowVulnerable: false,
        maxLedgerAgeSeconds: 600,
      });
    });

    it("fills in the default ledger age and leaves absent choices absent", function () {
      expect(parseDevicePolicy({})).to.deep.equal({ maxLedgerAgeSeconds: DEFAULT_DEVICE_POLICY.maxLedgerAgeSeconds });
    });

    it("the default policy cannot be changed by a caller", function () {
      expect(Object.isFrozen(DEFAULT_DEVICE_POLICY)).to.equal(true);
      expect(DEFAULT_DEVICE_POLICY).to.deep.equal({ maxLedgerAgeSeconds: 3600 });
    });

    const bad: [string, unknown, string, RegExp][] = [
      ["not an object", [], "(root)", /must be a JSON object/],
      ["null", null, "(root)", /must be a JSON object/],
      ["an unknown (misspelt) field", { securityonly: true }, "securityonly", /unknown field "securityonly"; the fields are window, pins, securityOnly/],
      ["a ledger age of 0", { maxLedgerAgeSeconds: 0 }, "maxLedgerAgeSeconds", /whole number of seconds above 0/],
      ["a fractional ledger age", { maxLedgerAgeSeconds: 1.5 }, "maxLedgerAgeSeconds", /whole number/],
      ["a ledger age as text", { maxLedgerAgeSeconds: "3600" }, "maxLedgerAgeSeconds", /leave it out for the default/],
      ["a negative block tolerance", { maxBlocksBehindUpstream: -1 }, "maxBlocksBehindUpstream", /whole number of blocks from 0/],
      ["securityOnly as text", { securityOnly: "yes" }, "securityOnly", /must be true or false/],
      ["allowVulnerable as a number", { allowVulnerable: 1 }, "allowVulnerable", /must be true or false/],
      ["a window that is not an object", { window: "22-4" }, "window", /startHourUtc.*endHourUtc.*0\.\.23/],
      ["a window hour of 24", { window: { startHourUtc: 22, endHourUtc: 24 } }, "window.endHourUtc", /whole hour 0\.\.23 \(got 24\)/],
      ["a missing window hour", { window: { startHourUtc: 22 } }, "window.endHourUtc", /got undefined/],
      ["an unknown window field", { window: { startHourUtc: 1, endHourUtc: 2, tz: "CET" } }, "window.tz", /unknown field/],
      ["an empty window", { window: { startHourUtc: 3, endHourUtc: 3 } }, "window", /leave the window out to allow any time/],
      ["pins as a list", { pins: [] }, "pins", /component id/],
      ["a pin keyed by name", { pins: { "acme.sensor-fw": "1" } }, "pins.acme.sensor-fw", /0x and 64 hex digits/],
      [
        "a pin as version text",
        { pins: { [FW]: "1.2.3" } },
        `pins.${FW}`,
        new RegExp(`decimal string, e\\.g\\. "${V123}" for 1\\.2\\.3 \\(got "1\\.2\\.3"\\)`),
      ],
      ["a pin as a number", { pins: { [FW]: Number(V123) } }, `pins.${FW}`, /decimal string/],
      ["a pin on a malformed encoding", { pins: { [FW]: 0x0001_0002_0003_c000n.toString() } }, `pins.${FW}`, /decimal string/],
      ["a component pinned twice", { pins: { [FW]: V123, [FW_UPPER]: V123 } }, `pins.${FW_UPPER}`, /pinned twice.*1\.2\.3/],
    ];
    for (const [name, json, field, pattern] of bad) {
      it(`refuses ${name}, naming the field and the fix`, function () {
        expectPolicyError(() => parseDevicePolicy(json), field, pattern);
      });
    }
  });

  describe("the update window", function () {
    it("a window within one day holds [start, end)", function () {
      const w = { startHourUtc: 2, endHourUtc: 5 };
      expect([1, 2, 3, 4, 5].map((h) => isInWindow(w, at(h, 30)))).to.deep.equal([false, true, true, true, false]);
      expect(isInWindow(w, at(4, 59) + 59)).to.equal(true);
    });

    it("a window wrapping midnight holds the evening and the early morning", function () {
      const w = { startHourUtc: 22, endHourUtc: 4 };
      expect([21, 22, 23, 0, 3, 4, 12].map((h) => isInWindow(w, at(h, 30)))).to.deep.equal([false, true, true, true, true, false, false]);
    });

    it("the next start is later the same day, or tomorrow once today's start has passed", function () {
      const w = { startHourUtc: 22, endHourUtc: 4 };
      expect(nextWindowStart(w, at(12))).to.equal(at(22));
      expect(nextWindowStart(w, at(4))).to.equal(at(22));
      expect(nextWindowStart(w, at(22))).to.equal(at(22));
      expect(nextWindowStart({ startHourUtc: 2, endHourUtc: 5 }, at(6))).to.equal(at(24 + 2));
    });
  });
});
