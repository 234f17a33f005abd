import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { freePort } from "./ports";
import { isListening, stopChild } from "./localChain";
import { brokerConfigFiles, type BrokerConfigInput } from "../../agent/tracker/mqttBrokerConfig";

export const MOSQUITTO = "/usr/sbin/mosquitto";

/**
 * Debian's mosquitto on 127.0.0.1 and a free port, with the configuration `tracker mqtt-config`
 * writes (ADR 0015), in a temporary folder; not the system's service. For the tests and for
 * `npm start -- --mqtt`. `stop()` and `start()` play
 * a broker restart on the same port; `close()` stops it and removes the folder.
 */
export async function startMosquitto(input: Omit<BrokerConfigInput, "host" | "port" | "dir">) {
  if (!existsSync(MOSQUITTO)) throw new Error(`${MOSQUITTO} is missing: install Debian's broker (apt-get install -y mosquitto; .ci/run does)`);
  const dir = mkdtempSync(path.join(tmpdir(), "ota-mosquitto-"));
  const port = await freePort();
  // Run as this user: as root, mosquitto would switch to "mosquitto", who cannot read a temporary folder of root's.
  const files = brokerConfigFiles({ ...input, host: "127.0.0.1", port, dir, runAs: userInfo().username });
  writeFileSync(path.join(dir, "passwd"), files.passwd, { mode: 0o600 });
  writeFileSync(path.join(dir, "acl"), files.acl);
  writeFileSync(path.join(dir, "mosquitto.conf"), files["mosquitto.conf"]);
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const start = async () => {
    const c = spawn(MOSQUITTO, ["-c", path.join(dir, "mosquitto.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    c.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
    c.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited ${c.exitCode}: ${output.join("")}`);
      if (await isListening("127.0.0.1", port)) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}: ${output.join("")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c) await stopChild(c); // SIGTERM, then SIGKILL after 5 s
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    output,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
