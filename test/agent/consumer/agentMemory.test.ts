import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AgentMemory } from "../../../agent/consumer/agentMemory";

/** What a device agent keeps across restarts besides its slots (REQ-10c-ii, CAP-11.2-m-b). */
describe("agent/consumer/agentMemory: retries, the last notice and evidence across restarts", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-memory-"));
    file = path.join(dir, "agent-state.json");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("starts empty without a file, and keeps what it is told after a reopen", async () => {
    const m = await AgentMemory.open(file);
    expect([...m.pending]).to.deep.equal([]);
    expect(m.lastNoticeAt).to.equal(0);
    await m.setPending("0xaa", true);
    await m.noteNotice(1234, "0xbb", "0xproof");
    const again = await AgentMemory.open(file);
    expect([...again.pending]).to.deep.equal(["0xaa"]);
    expect(again.lastNoticeAt).to.equal(1234);
    expect(again.evidence.get("0xbb")).to.equal("0xproof");
    await again.setPending("0xaa", false);
    expect([...(await AgentMemory.open(file)).pending]).to.deep.equal([]);
  });

  it("REQ-10b-i: keeps the ledger block its upstream's newest notice signed (the floor of its view) across a restart; a file from before issue 16 has none", async () => {
    const m = await AgentMemory.open(file);
    expect(m.ledgerFloor).to.equal(0);
    await m.noteNotice(1, "0xaa", undefined, 1e15); // absurd (a module's bug or stolen key)
    await m.noteNotice(2, "0xaa", undefined, 500); // the next notice's block replaces it
    await m.noteNotice(3, "0xaa"); // a notice without one changes nothing
    await m.noteNotice(1, "0xaa", undefined, 9000); // nor does one issued before the floor's
    const reopened = await AgentMemory.open(file);
    expect(reopened.ledgerFloor).to.equal(500);
    expect(reopened.ledgerFloorAt, "the issue time of the notice that set it").to.equal(2);
    writeFileSync(file, JSON.stringify({ version: 1, pending: ["0x01"], lastNoticeAt: 7, evidence: {} }));
    const old = await AgentMemory.open(file);
    expect(old.ledgerFloor).to.equal(0);
    expect(old.lastNoticeAt).to.equal(7);
  });

  it("writes only on a change, and concurrent changes all land", async () => {
    const m = await AgentMemory.open(file);
    await Promise.all(["0x01", "0x02", "0x03", "0x04"].map((id) => m.setPending(id, true)));
    expect([...(await AgentMemory.open(file)).pending].sort()).to.deep.equal(["0x01", "0x02", "0x03", "0x04"]);
    const before = readFileSync(file, "utf8");
    writeFileSync(file, before.replace('"version":1', '"version":1 '));
    await m.setPending("0x01", true); // unchanged: nothing written
    expect(readFileSync(file, "utf8")).to.not.equal(before);
  });

  it("keeps the evidence of the newest 64 releases only", async () => {
    const m = await AgentMemory.open(file);
    for (let i = 0; i < 70; i++) await m.noteNotice(i + 1, `0x${i}`, `0xe${i}`);
    const again = await AgentMemory.open(file);
    expect(again.evidence.size).to.equal(64);
    expect(again.evidence.has("0x5")).to.equal(false);
    expect(again.evidence.get("0x69")).to.equal("0xe69");
  });

  it("an unreadable file is logged and started afresh, not fatal to the device", async () => {
    writeFileSync(file, "{ torn");
    const lines: string[] = [];
    const m = await AgentMemory.open(file, (l) => lines.push(l));
    expect([...m.pending]).to.deep.equal([]);
    expect(lines.join("\n")).to.match(/agent-state\.json is unreadable .*starting without remembered retries/);
    writeFileSync(file, JSON.stringify({ version: 2 }));
    expect((await AgentMemory.open(file, (l) => lines.push(l))).lastNoticeAt).to.equal(0);
    expect(lines[1]).to.match(/not an agent-state file of version 1/);
  });
});
