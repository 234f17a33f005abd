import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { waitFor, type WaitOptions } from "./waitFor";

const ROOT = path.join(__dirname, "..", "..", "..");
const LAUNCHER = path.join(ROOT, "bin", "ota-ledger.js");
const KEEP_LINES = 300;

/** Every group still running, killed if the test process exits without its after hooks. */
const live = new Set<number>();
process.once("exit", () => {
  for (const pid of live) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/**
 * `node bin/ota-ledger.js <args>` in its own process group, as an operator starts it, with the
 * working folder and OTA_* settings given (never the test run's own OTA_* variables). Its stdout
 * and stderr are kept (the last lines) for assertions and failure messages. `command` runs
 * another program instead (a shipped agent: the device bundle, an installed ota-ledger), and
 * `unsetEnv` drops variables of the test run that would help it (NODE_PATH, ts-node's).
 */
export class CliProcess {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly name: string,
    readonly args: string[],
    o: { cwd: string; env?: Record<string, string | undefined>; command?: string[]; unsetEnv?: string[] },
  ) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("OTA_") && k !== "HARDHAT_NETWORK") env[k] = v;
    for (const k of o.unsetEnv ?? []) delete env[k];
    for (const [k, v] of Object.entries(o.env ?? {})) if (v !== undefined) env[k] = v;
    const [program, ...before] = o.command ?? [process.execPath, LAUNCHER];
    this.child = spawn(program, [...before, ...args], { cwd: o.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const take = (stream: string) => {
      let rest = "";
      return (chunk: Buffer) => {
        const text = rest + chunk.toString("utf8");
        const parts = text.split("\n");
        rest = parts.pop()!;
        for (const line of parts) this.push(`${stream}: ${line}`);
      };
    };
    live.add(this.child.pid!);
    this.child.stdout!.on("data", take("out"));
    this.child.stderr!.on("data", take("err"));
    this.exit = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        this.exited = { code, signal };
        live.delete(this.child.pid!);
        this.push(`(exited: code ${code}, signal ${signal})`);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exited === null;
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEEP_LINES) this.lines.splice(0, this.lines.length - KEEP_LINES);
  }

  /** The output so far (stdout lines prefixed "out:", stderr "err:"). */
  output(last = 60): string {
    return `--- ${this.name} (pid ${this.child.pid}, ${this.running ? "running" : `exited ${JSON.stringify(this.exited)}`}), last ${last} lines:\n${this.lines.slice(-last).join("\n")}`;
  }

  /** Waits for a line of output matching `pattern` (and `accept`, if given), counting from line `from` of what was kept. */
  async waitForLine(pattern: RegExp, o: WaitOptions & { from?: number; accept?: (line: string) => boolean } = {}): Promise<string> {
    return waitFor(
      `${this.name} to print ${pattern}`,
      () => {
        const found = this.lines.slice(o.from ?? 0).find((l) => pattern.test(l) && (o.accept?.(l) ?? true));
        if (found) return found;
        if (!this.running) throw new Error(`${this.name} exited: ${JSON.stringify(this.exited)}`);
        return undefined;
      },
      { ...o, context: () => `${this.output()}${o.context ? `\n${o.context()}` : ""}` },
    );
  }

  /** Sends `signal` to the whole process group. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGKILL to the group, and waits for the exit. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exit;
  }

  /** SIGTERM (the way an operator stops it), SIGKILL after `graceMs`; resolves on exit. */
  async stop(graceMs = 5_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exited!;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  wait(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exit;
  }
}
