/**
 * Every benchmark in turn (issue 7): gas, crypto, consumer, tracker, e2e, device (issue 14), stateproof (issue 16), delta (issue 19), each its own
 * `npm run bench:<name>` in a child process, so that one's memory does not count in another's.
 *
 *   npm run bench                      each prints its figures as it ends
 *   npm run bench -- --json            one JSON document: { machine, benches: { gas: {...}, ... } }
 *   npm run bench -- --only gas,e2e    some of them
 *   npm run bench -- --quick           smaller sizes: a 64 MiB image, 20,000 tracker devices, 100 e2e devices, 3 device-agent starts, 1,000 accounts and slots (stateproof)
 *
 * Sizes can also be set one by one, as each benchmark reads them: BENCH_SIZE_MIB (crypto and
 * consumer), BENCH_DEVICES (tracker), BENCH_E2E_DEVICES (e2e), BENCH_DEVICE_RUNS (device); given ones win over --quick. The
 * default is the issues' sizes (256 MiB, 1,000,000 tracker devices, 1,000 e2e devices): the tracker
 * takes the longest (several minutes to build its databases). A benchmark that fails is named in
 * the output (and the JSON) and the run goes on; the exit status is then 1.
 */
import { spawn } from "node:child_process";
import os from "node:os";

const BENCHES = ["gas", "crypto", "consumer", "tracker", "e2e", "device", "stateproof", "delta"] as const;
type Bench = (typeof BENCHES)[number];

const argv = process.argv.slice(2);
const json = argv.includes("--json") || process.env.BENCH_JSON === "1";
const quick = argv.includes("--quick");
const onlyAt = argv.indexOf("--only");
const only =
  onlyAt >= 0
    ? (argv[onlyAt + 1] ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [...BENCHES];
for (const name of only)
  if (!(BENCHES as readonly string[]).includes(name)) throw new Error(`--only: no benchmark "${name}"; choose from ${BENCHES.join(", ")}`);

const QUICK: Record<string, string> = {
  BENCH_SIZE_MIB: "64",
  BENCH_DEVICES: "20000",
  BENCH_E2E_DEVICES: "100",
  BENCH_DEVICE_RUNS: "3",
  BENCH_ACCOUNTS: "1000",
  BENCH_SLOTS: "1000",
};

let interrupted = false;
let running: ReturnType<typeof spawn> | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    // The child got the terminal's signal too, and stops its own chain, servers and files; then we stop.
    interrupted = true;
    if (running && signal === "SIGTERM") running.kill("SIGTERM");
  });
}

/** Runs `npm run --silent bench:<name>`; in JSON mode its standard output is captured and parsed. */
function run(name: Bench): Promise<{ ok: boolean; seconds: number; figures?: unknown; error?: string }> {
  const started = performance.now();
  const env = {
    ...process.env,
    ...(quick ? Object.fromEntries(Object.entries(QUICK).filter(([k]) => process.env[k] === undefined)) : {}),
    ...(json ? { BENCH_JSON: "1" } : {}),
  };
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "--silent", `bench:${name}`], { env, stdio: ["ignore", json ? "pipe" : "inherit", "inherit"] });
    running = child;
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("error", (err) => resolve({ ok: false, seconds: 0, error: err.message }));
    child.once("exit", (code, signal) => {
      running = undefined;
      const seconds = Math.round(performance.now() - started) / 1000;
      if (code !== 0) return resolve({ ok: false, seconds, error: signal ? `stopped by ${signal}` : `exit status ${code}` });
      if (!json) return resolve({ ok: true, seconds });
      try {
        resolve({ ok: true, seconds, figures: parseJson(out) });
      } catch {
        resolve({ ok: false, seconds, error: `its output is not JSON: ${out.slice(0, 200)}` });
      }
    });
  });
}

/** The JSON document a benchmark printed (anything before its opening brace, e.g. a tool's notice, is skipped). */
function parseJson(out: string): unknown {
  try {
    return JSON.parse(out);
  } catch {
    const start = out.search(/^\{/m);
    if (start < 0) throw new Error("no JSON object");
    return JSON.parse(out.slice(start));
  }
}

async function main(): Promise<void> {
  const benches: Record<string, unknown> = {};
  const failed: string[] = [];
  for (const name of BENCHES) {
    if (!only.includes(name) || interrupted) continue;
    if (!json) console.log(`\n==== bench:${name}\n`);
    else process.stderr.write(`bench:${name} ...\n`);
    const result = await run(name);
    if (!result.ok) failed.push(name);
    if (json) benches[name] = result.ok ? { seconds: result.seconds, figures: result.figures } : { seconds: result.seconds, error: result.error };
    else console.log(result.ok ? `\n(bench:${name} took ${result.seconds} s)` : `\nbench:${name} FAILED: ${result.error}`);
  }
  if (json) {
    const machine = {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memoryMiB: Math.round(os.totalmem() / 1024 / 1024),
      node: process.version,
      loadavgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    };
    console.log(JSON.stringify({ date: new Date().toISOString(), machine, quick, benches, failed, interrupted }, null, 2));
  } else if (failed.length > 0) console.log(`\nfailed: ${failed.join(", ")}`);
  process.exitCode = failed.length > 0 || interrupted ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
