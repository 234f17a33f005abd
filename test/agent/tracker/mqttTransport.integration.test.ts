import { expect } from "chai";
import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { connectAsync, type MqttClient } from "mqtt";
import { serverFixture, trackerBeside, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { startMosquitto } from "../../../scripts/lib/mosquitto";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { DeviceRunner } from "../../../agent/consumer/deviceRunner";
import { openReportTransport, type ReportAnswer, type ReportTransport, type TrackerSetting } from "../../../agent/consumer/reportTransport";
import { componentId } from "../../../agent/core/release";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { NOTICE_KIND } from "../../../agent/core/updateNotice";
import { noticeTopic, reportTag, reportTopic, type ReportTopicAnswer } from "../../../agent/core/reportTopics";
import { deviceMqttPassword, moduleMqttPassword, moduleMqttUser } from "../../../agent/crypto/mqttCredentials";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { startTrackerMqtt, type RunningTrackerMqtt } from "../../../agent/tracker/mqttIntake";

const BOOT = componentId("acme.bootloader").toLowerCase();

/** Waits for `check` to hold (polled), or fails naming `what`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A transport that keeps every answer it carried (to replay a genuine notice later). */
function recording(inner: ReportTransport, answers: ReportAnswer[]): ReportTransport {
  return {
    kind: inner.kind,
    target: inner.target,
    exchange: async (e) => {
      const a = await inner.exchange(e);
      answers.push(a);
      return a;
    },
    close: () => inner.close(),
  };
}

/**
 * Issue 19 (ADR 0015): device reports and tracker notices over a real MQTT broker (Debian's
 * mosquitto, spawned on 127.0.0.1 with the configuration `tracker mqtt-config` writes). The
 * sealed messages and their checks are those of HTTP; the broker is not trusted.
 */
describe("agent/tracker and agent/consumer over MQTT (issue 19, ADR 0015: CAP-11.2-m, DEP-8.2.2)", function () {
  this.timeout(60_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let broker: Awaited<ReturnType<typeof startMosquitto>>;
  let intake: RunningTrackerMqtt;
  let setting: TrackerSetting;
  const clients: MqttClient[] = [];
  const answersOfB: ReportAnswer[] = [];
  let seed = 1;

  const release = (version: string, grant: DeviceIdentity[]) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `mqtt-boot-${version}.bin`, 40 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant },
    );
  const active = (agent: DeviceAgent) => {
    const c = agent.slots.snapshot().components[BOOT];
    return c?.slots[c.active]?.releaseId;
  };
  const view = (d: DeviceIdentity) => t.tracker.views.device(d.credential.record.id)!.device;
  /** A raw MQTT login: a device's (by its key) or the module's. */
  const login = async (who: DeviceIdentity | "module", password?: string, clientId?: string) => {
    const username = who === "module" ? moduleMqttUser(t.id) : who.credential.record.id.toLowerCase();
    const client = await connectAsync(
      broker.url,
      {
        username,
        ...(clientId ? { clientId } : {}),
        password:
          password ??
          (who === "module"
            ? moduleMqttPassword(t.key.privateKey, t.id)
            : deviceMqttPassword(who.privateKey, t.key.signingKey.compressedPublicKey, who.credential.record.id, t.id)),
        protocolVersion: 5,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      },
      false,
    );
    clients.push(client);
    return client;
  };

  before(async () => {
    f = await serverFixture();
    t = await trackerBeside(f, "mqtt tracker");
    // The broker's logins and ACL from the tracker's enrolled devices, as `tracker mqtt-config` writes them.
    const devices = t.tracker.store.devices.activeKeys();
    broker = await startMosquitto({ moduleId: t.id, modulePrivateKey: t.key.privateKey, devices });
    intake = await startTrackerMqtt(t.tracker, { url: broker.url });
    // No url: these devices speak to their tracker only over MQTT.
    setting = { moduleId: t.id, publicKey: t.key.signingKey.compressedPublicKey, transport: { kind: "mqtt", url: broker.url } };
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await intake?.close();
    await t?.stop();
    await broker?.close();
    await f?.close();
  });

  it("CAP-11.2-m-a CAP-11.2-m-b DEP-8.2.2: a release reaches devices that speak only MQTT: they learn of it from MQTT notices, install it, report over MQTT, and the tracker lists them up to date", async () => {
    const { a, b } = f.devices;
    const v1 = await release("1.0.0", [a, b]);
    const lines: string[] = [];
    const runner = await DeviceRunner.start(
      { provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0 },
      [
        deviceAgentOptions(f, a, "mqtt-a", { tracker: setting, log: (l) => lines.push(`a: ${l}`) }),
        deviceAgentOptions(f, b, "mqtt-b", {
          tracker: setting,
          reportTransport: recording(openReportTransport(setting, { privateKey: b.privateKey, id: b.credential.record.id }), answersOfB),
          log: (l) => lines.push(`b: ${l}`),
        }),
      ],
      { stateDir: `${f.dir}/mqtt-runner`, followLedger: false, heartbeatMs: 300, retryMs: 300 },
    );
    try {
      const [agentA, agentB] = runner.agents;
      // The factory image, installed at the plant; each device reports it over MQTT at the end.
      for (const agent of runner.agents) expect(await agent.considerRelease(v1.releaseId, "factory"), lines.join("\n")).to.include({ outcome: "confirmed" });
      await until("both devices listed up to date on 1.0.0", () => [a, b].every((d) => view(d).statuses.join() === "up-to-date"));

      const v2 = await release("1.1.0", [a, b]);
      await t.tracker.stream.pollOnce();
      await until("both devices running 1.1.0", () => active(agentA) === v2.releaseId.toLowerCase() && active(agentB) === v2.releaseId.toLowerCase());
      await until("the tracker listing both up to date on 1.1.0", () =>
        [a, b].every((d) => view(d).statuses.join() === "up-to-date" && view(d).installed.some((i) => i.releaseId === v2.releaseId.toLowerCase())),
      );
      // Told by a notice in an MQTT answer (no tracker URL was given, and these devices do not follow the ledger).
      for (const who of ["a", "b"])
        await until(`device ${who} acting on the notice`, () => lines.includes(`${who}: notice: release ${v2.releaseId.toLowerCase()} confirmed (OK)`));
      expect(t.tracker.store.decisions.deliveries(a.credential.record.id).map((d) => d.releaseId)).to.include(v2.releaseId.toLowerCase());
      expect(
        answersOfB.some((x) => Array.isArray((x.body as { notices?: unknown[] })?.notices) && (x.body as { notices: unknown[] }).notices.length > 0),
      ).to.equal(true);
      // Over MQTT, too, the device's first report opened a report session (ADR 0013) and the next ones used it.
      expect(answersOfB.some((x) => (x.body as { session?: unknown })?.session !== undefined)).to.equal(true);
    } finally {
      await runner.stop();
    }
  });

  it("CAP-11.2-m-a: a device's login cannot read another device's notices nor publish its reports, nor take the module's or another device's connection, and a wrong password is refused", async () => {
    const { a, b } = f.devices;
    const spy = await login(a);
    const owner = await login(b);
    const seenBySpy: string[] = [];
    const seenByOwner: string[] = [];
    spy.on("message", (topic) => seenBySpy.push(topic));
    owner.on("message", (topic) => seenByOwner.push(topic));
    const bNotices = noticeTopic("ota", t.id, b.credential.record.id);
    await spy.subscribeAsync(bNotices, { qos: 1 }); // mosquitto grants the subscription and filters each message by the ACL
    await spy.subscribeAsync(`ota/${t.id.toLowerCase()}/+/notices`, { qos: 1 });
    await owner.subscribeAsync(bNotices, { qos: 1 });
    const module = await login("module");
    await module.publishAsync(bNotices, JSON.stringify({ re: "0x00", error: { code: "TEST", message: "for b only" } }), { qos: 1 });
    // One connection per login: the module's own, taken by this client, comes back once it is gone.
    await module.endAsync();
    clients.splice(clients.indexOf(module), 1);
    await until("the owner's copy", () => seenByOwner.includes(bNotices));
    await new Promise((r) => setTimeout(r, 500));
    expect(seenBySpy, "another device's notices never reach a device").to.deep.equal([]);

    const counter = view(b).lastSeen; // the trusted state, before
    await spy.publishAsync(reportTopic("ota", t.id, b.credential.record.id), "{}", { qos: 1 }).then(
      () => expect.fail("published on another device's reports topic"),
      (err: { code?: number }) => expect(err.code).to.equal(0x87),
    );
    expect(view(b).lastSeen).to.equal(counter);
    await login(a, "not-the-password").then(
      () => expect.fail("logged in with a wrong password"),
      (err: { code?: number }) => expect(err.code).to.equal(0x87),
    );
    // Review finding: a device that asks for the module's client id, or another device's, takes no
    // one's connection (the broker gives every login its own name as its client id).
    await until("the module connected again", () => intake.connected);
    await login(a, undefined, moduleMqttUser(t.id));
    await login(a, undefined, b.credential.record.id.toLowerCase());
    await new Promise((r) => setTimeout(r, 500));
    expect(intake.connected, "the module's connection").to.equal(true);
    expect(owner.connected, "device b's connection").to.equal(true);
  });

  it("CAP-11.2-m-b CAP-11.2-d: over MQTT a replayed, duplicated or reordered report and another device's bytes are refused, and forged, replayed or misdelivered notices change nothing on the device", async () => {
    const { a, b } = f.devices;
    const gateway = f.devices.gateway;
    const gatewayId = gateway.credential.record.id.toLowerCase();
    const sealedReport = (d: DeviceIdentity, counter: number) => {
      const body: StatusReport = {
        deviceId: d.credential.record.id.toLowerCase(),
        counter,
        installed: [],
        lastResult: null,
        needs: [],
        declined: [],
        safeMode: false,
      };
      return sealMessage(
        { kind: REPORT_KIND, from: body.deviceId, to: t.id, issuedAt: Date.now(), body },
        { kind: "device", privateKey: d.privateKey },
        t.key.signingKey.compressedPublicKey,
      );
    };
    const client = await login(gateway);
    const answers: ReportTopicAnswer[] = [];
    client.on("message", (_topic, payload) => answers.push(JSON.parse(payload.toString()) as ReportTopicAnswer));
    await client.subscribeAsync(noticeTopic("ota", t.id, gatewayId), { qos: 1 });
    const send = async (envelope: Envelope) => {
      const n = answers.length;
      await client.publishAsync(reportTopic("ota", t.id, gatewayId), JSON.stringify(envelope), { qos: 1 });
      await until("the tracker's answer", () => answers.length > n);
      const answer = answers[n];
      expect(answer.re).to.equal(reportTag(envelope));
      return answer;
    };
    const first = await sealedReport(gateway, 1_000);
    const older = await sealedReport(gateway, 999);
    expect(await send(first)).to.include({ accepted: true, counter: 1_000 });
    const taken = t.tracker.store.reports.of(gatewayId).length;
    for (const [what, envelope] of [
      ["a duplicate (QoS 1 redelivery, or a replay)", first],
      ["an older report after a newer (reordered)", older],
    ] as const) {
      expect(await send(envelope), what).to.have.nested.property("error.code", "REPORT_REPLAYED");
      expect(t.tracker.store.reports.of(gatewayId).length, `${what}: nothing taken`).to.equal(taken);
    }
    // Device a's genuine report delivered on the gateway's topic (a broker that mixes devices up): refused, a's state unchanged.
    const aSeen = view(a).lastSeen;
    const misdelivered = await send(await sealedReport(a, 5_000));
    expect(misdelivered).to.have.nested.property("error.code", "REPORT_NOT_FROM_TOPIC");
    expect(view(a).lastSeen).to.equal(aSeen);
    expect(t.tracker.store.reports.of(a.credential.record.id).every((r) => r.counter !== 5_000)).to.equal(true);

    // The broker answers device b's report itself (the tracker's intake is off): with b's own genuine
    // notice of before (a replay), a notice sealed to device a, and one signed by a key no ledger registers.
    await intake.close();
    const genuine = answersOfB.flatMap((x) => ((x.body as { notices?: Envelope[] })?.notices ?? []) as Envelope[]);
    expect(genuine.length).to.be.greaterThan(0);
    const moduleSigner = { kind: "account" as const, signMessage: (m: string) => t.key.signMessage(m) };
    const rogue = new Wallet(keccak256(toUtf8Bytes("rogue module key")));
    const notice = (to: DeviceIdentity, signer: Parameters<typeof sealMessage>[1]) =>
      sealMessage(
        {
          kind: NOTICE_KIND,
          from: t.id,
          to: to.credential.record.id,
          issuedAt: Date.now(),
          body: { releaseId: keccak256(toUtf8Bytes("v9")), component: BOOT, reason: "outdated" },
        },
        signer,
        to.credential.record.publicKey,
      );
    const forged = [genuine[0], await notice(a, moduleSigner), await notice(b, { kind: "account", signMessage: (m) => rogue.signMessage(m) })];
    const liar = await login("module");
    await liar.subscribeAsync(reportTopic("ota", t.id, b.credential.record.id), { qos: 1 });
    liar.on("message", (_topic, payload) => {
      const re = reportTag(JSON.parse(payload.toString()) as Envelope);
      void liar.publishAsync(noticeTopic("ota", t.id, b.credential.record.id), JSON.stringify({ re, accepted: true, counter: 1, notices: forged }), { qos: 1 });
    });
    const lines: string[] = [];
    const agentB = await DeviceAgent.open(deviceAgentOptions(f, b, "mqtt-b", { tracker: setting, log: (l) => lines.push(l) }));
    try {
      const before = active(agentB);
      await agentB.report();
      await agentB.settled();
      // Each of the three refused, at the report at start and at this one; none acted on.
      expect(lines.filter((l) => l.startsWith("notice refused")).length, lines.join("\n")).to.be.at.least(3);
      expect(
        lines.filter((l) => l.startsWith("notice: ")),
        "no notice acted on",
      ).to.deep.equal([]);
      expect(active(agentB), "nothing installed").to.equal(before);
    } finally {
      await agentB.close();
      await liar.endAsync(true);
      intake = await startTrackerMqtt(t.tracker, { url: broker.url });
    }
  });

  it("CAP-11.2-m-c issue 15: a broker outage is a delivery fault: reports fail TRACKER_UNREACHABLE, nothing is failed, and after the broker restarts the next report is taken", async () => {
    const dev = f.devices.a;
    // A short wait for answers: the first report after the restart may go before the tracker is back (it reconnects every 2 s).
    const agent = await DeviceAgent.open(deviceAgentOptions(f, dev, "mqtt-a", { tracker: { ...setting, timeoutMs: 2000 } }));
    try {
      const id = dev.credential.record.id;
      await agent.report();
      const before = view(dev);
      await broker.stop();
      await agent.report().then(
        () => expect.fail("reported with the broker down"),
        (err: { code?: string }) => expect(err.code).to.equal("TRACKER_UNREACHABLE"),
      );
      expect(view(dev).statuses).to.not.include("failed");
      expect(view(dev).lastOutcome).to.equal(before.lastOutcome);
      await broker.start();
      // The tracker reconnects by itself (every 2 s); the device's next heartbeat opens a new connection.
      await until(
        "a report taken after the restart",
        async () => {
          const ok = await agent.report().then(
            () => true,
            () => false,
          );
          return ok && (t.tracker.views.device(id)!.device.lastSeen ?? 0) > (before.lastSeen ?? 0);
        },
        20_000,
      );
      expect(intake.connected).to.equal(true);
    } finally {
      await agent.close();
    }
  });
});
