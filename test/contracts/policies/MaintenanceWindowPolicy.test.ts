import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash } from "ethers";
import { ROLES, catalogFixture } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import type { MaintenanceWindowPolicy } from "../../../typechain-types";

const OUTSIDE_WINDOW = 1n;

/** Weekday bits, ISO order: bit 0 = Monday. */
const DAY = { mon: 1, tue: 2, wed: 4, thu: 8, fri: 16, sat: 32, sun: 64 };
const EVERY_DAY = 0x7f;
const WEEKDAYS = DAY.mon | DAY.tue | DAY.wed | DAY.thu | DAY.fri;

/** A Monday far enough ahead of any fixture's clock, as a day number since the epoch. */
const MONDAY = 30_000 + ((7 - ((30_000 + 3) % 7)) % 7);
const WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

/** Unix seconds of `weekday` in the test week (or the week after, with `week`) at "HH:MM[:SS]" UTC. */
function at(weekday: (typeof WEEK)[number], clock: string, week = 0): number {
  const [h, m, s = 0] = clock.split(":").map(Number);
  return (MONDAY + 7 * week + WEEK.indexOf(weekday)) * 86_400 + h * 3600 + m * 60 + s;
}

/** Minutes after midnight of "HH:MM". */
function minute(clock: string): number {
  const [h, m] = clock.split(":").map(Number);
  return h * 60 + m;
}

const DEVICE = { deviceId: ZeroHash, hardwareClass: 1, network: ZeroHash, region: ZeroHash, installed: [] };

/** Office hours: 09:00-17:00 Monday to Friday. */
async function windowFixture() {
  const base = await catalogFixture();
  const policy = (await ethers.deployContract("MaintenanceWindowPolicy", [
    await base.registry.getAddress(),
    minute("09:00"),
    minute("17:00"),
    WEEKDAYS,
  ])) as unknown as MaintenanceWindowPolicy;
  return { ...base, policy };
}

type Fixture = Awaited<ReturnType<typeof windowFixture>>;

/** The policy's answer with the chain's clock at `timestamp`. */
async function askAt(policy: MaintenanceWindowPolicy, timestamp: number): Promise<bigint> {
  await time.increaseTo(timestamp);
  return policy.check(ZeroHash, ZeroHash, 0, DEVICE, "0x");
}

describe("MaintenanceWindowPolicy (a custom rule, APP-II-3)", function () {
  it("the test week starts on a Monday", function () {
    expect(new Date(at("mon", "00:00") * 1000).getUTCDay()).to.equal(1);
  });

  it("starts with its window and publishes its reason code", async function () {
    const { policy, admin } = await loadFixture(windowFixture);
    expect(await policy.window()).to.deep.equal([BigInt(minute("09:00")), BigInt(minute("17:00")), BigInt(WEEKDAYS)]);
    expect(await policy.OUTSIDE_WINDOW()).to.equal(OUTSIDE_WINDOW);
    expect(await policy.EVERY_DAY()).to.equal(BigInt(EVERY_DAY));
    await expect(policy.deploymentTransaction()).to.emit(policy, "WindowSet").withArgs(minute("09:00"), minute("17:00"), WEEKDAYS, admin.address);
  });

  describe("a window within the day (09:00-17:00, Monday to Friday), on the chain's clock", function () {
    it("opens at the start minute exactly and closes at the end minute exactly", async function () {
      const { policy } = await loadFixture(windowFixture);
      expect(await askAt(policy, at("tue", "08:59:59"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("tue", "09:00:00"))).to.equal(0n);
      expect(await askAt(policy, at("tue", "12:30"))).to.equal(0n);
      expect(await askAt(policy, at("tue", "16:59:59"))).to.equal(0n);
      expect(await askAt(policy, at("tue", "17:00:00"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("tue", "23:59:59"))).to.equal(OUTSIDE_WINDOW);
    });

    it("stays closed at the same hours on days outside the mask", async function () {
      const { policy } = await loadFixture(windowFixture);
      expect(await askAt(policy, at("fri", "16:59:59"))).to.equal(0n);
      expect(await askAt(policy, at("sat", "09:00"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("sun", "12:00"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("mon", "09:00", 1))).to.equal(0n);
    });
  });

  describe("a window across midnight (22:00-02:00, Fridays)", function () {
    async function fridayNights() {
      const { policy, admin } = await loadFixture(windowFixture);
      await policy.connect(admin).setWindow(minute("22:00"), minute("02:00"), DAY.fri);
      return { policy };
    }

    it("opens on Friday at 22:00 and closes on Saturday at 02:00", async function () {
      const { policy } = await fridayNights();
      expect(await askAt(policy, at("fri", "21:59:59"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("fri", "22:00"))).to.equal(0n);
      expect(await askAt(policy, at("fri", "23:59:59"))).to.equal(0n);
      expect(await askAt(policy, at("sat", "00:00"))).to.equal(0n);
      expect(await askAt(policy, at("sat", "01:59:59"))).to.equal(0n);
      expect(await askAt(policy, at("sat", "02:00"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("sat", "22:00"))).to.equal(OUTSIDE_WINDOW);
    });

    it("the hours after midnight belong to the day the window opened", async function () {
      const { policy } = await fridayNights();
      // Friday 01:00 is the tail of Thursday's window, and Thursday is not in the mask.
      expect(await policy.isOpenAt(at("fri", "01:00"))).to.equal(false);
      expect(await policy.isOpenAt(at("sat", "01:00"))).to.equal(true);
      expect(await askAt(policy, at("fri", "01:00"))).to.equal(OUTSIDE_WINDOW);
    });
  });

  describe("a whole-day window (start = end) on weekends", function () {
    it("is open all Saturday and Sunday and closed the rest of the week", async function () {
      const { policy, admin } = await loadFixture(windowFixture);
      await policy.connect(admin).setWindow(minute("06:00"), minute("06:00"), DAY.sat | DAY.sun);
      expect(await askAt(policy, at("fri", "23:59:59"))).to.equal(OUTSIDE_WINDOW);
      expect(await askAt(policy, at("sat", "00:00"))).to.equal(0n);
      expect(await askAt(policy, at("sat", "05:59"))).to.equal(0n);
      expect(await askAt(policy, at("sun", "23:59:59"))).to.equal(0n);
      expect(await askAt(policy, at("mon", "00:00", 1))).to.equal(OUTSIDE_WINDOW);
    });
  });

  describe("isOpenAt, for any instant", function () {
    const table: Array<[string, [string, string, number], Array<[(typeof WEEK)[number], string, boolean]>]> = [
      [
        "00:00-01:00 every day",
        ["00:00", "01:00", EVERY_DAY],
        [
          ["mon", "00:00", true],
          ["wed", "00:59:59", true],
          ["thu", "01:00", false],
          ["sun", "23:59:59", false],
        ],
      ],
      [
        "23:00-00:00 (up to midnight) on Sundays",
        ["23:00", "00:00", DAY.sun],
        [
          ["sun", "23:00", true],
          ["sun", "23:59:59", true],
          ["mon", "00:00", false],
          ["sat", "23:30", false],
        ],
      ],
      [
        "23:59-00:01 on Wednesdays",
        ["23:59", "00:01", DAY.wed],
        [
          ["wed", "23:58:59", false],
          ["wed", "23:59", true],
          ["thu", "00:00:59", true],
          ["thu", "00:01", false],
          ["thu", "23:59", false],
        ],
      ],
    ];
    for (const [name, [start, end, days], instants] of table) {
      it(name, async function () {
        const { policy, admin } = await loadFixture(windowFixture);
        await policy.connect(admin).setWindow(minute(start), minute(end), days);
        for (const [day, clock, open] of instants) {
          expect(await policy.isOpenAt(at(day, clock)), `${day} ${clock}`).to.equal(open);
        }
      });
    }

    it("has no day before the epoch's first midnight", async function () {
      const { policy, admin } = await loadFixture(windowFixture);
      await policy.connect(admin).setWindow(minute("22:00"), minute("02:00"), EVERY_DAY);
      expect(await policy.isOpenAt(3600)).to.equal(false);
      expect(await policy.isOpenAt(86_400 + 3600)).to.equal(true);
    });
  });

  describe("administration", function () {
    it("an administrator replaces the window", async function () {
      const { policy, admin } = await loadFixture(windowFixture);
      await expect(policy.connect(admin).setWindow(0, 1439, DAY.sun))
        .to.emit(policy, "WindowSet")
        .withArgs(0, 1439, DAY.sun, admin.address);
      expect(await policy.window()).to.deep.equal([0n, 1439n, BigInt(DAY.sun)]);
    });

    const deployments: Array<[string, [number, number, number], string, number]> = [
      ["a start past the day", [1440, 60, EVERY_DAY], "MaintenanceWindowPolicyInvalidMinute", 1440],
      ["an end past the day", [60, 1440, EVERY_DAY], "MaintenanceWindowPolicyInvalidMinute", 1440],
      ["no weekday", [60, 120, 0], "MaintenanceWindowPolicyInvalidWeekdays", 0],
    ];
    for (const [name, params, error, arg] of deployments) {
      it(`refuses to deploy with ${name}`, async function () {
        const { registry } = await loadFixture(windowFixture);
        const factory = await ethers.getContractFactory("MaintenanceWindowPolicy");
        await expect(factory.deploy(await registry.getAddress(), ...params))
          .to.be.revertedWithCustomError(factory, error)
          .withArgs(arg);
      });
    }

    itRejectsWithoutChange<Fixture>(
      [
        {
          name: "a window set by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.outsider).setWindow(0, 60, EVERY_DAY),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a start minute of 1440",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setWindow(1440, 60, EVERY_DAY),
            error: "MaintenanceWindowPolicyInvalidMinute",
            args: [1440],
          }),
        },
        {
          name: "an end minute of 1500",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setWindow(0, 1500, EVERY_DAY),
            error: "MaintenanceWindowPolicyInvalidMinute",
            args: [1500],
          }),
        },
        {
          name: "an empty weekday mask",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).setWindow(0, 60, 0), error: "MaintenanceWindowPolicyInvalidWeekdays", args: [0] }),
        },
        {
          name: "a weekday mask with bit 7",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setWindow(0, 60, 0x80 | DAY.mon),
            error: "MaintenanceWindowPolicyInvalidWeekdays",
            args: [0x81],
          }),
        },
      ],
      { fixture: windowFixture, contract: (f) => f.policy, snapshot: async (f) => [...(await f.policy.window())] },
    );
  });
});
