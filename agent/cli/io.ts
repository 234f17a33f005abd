/**
 * Everything the CLI touches outside itself, passed in so that tests run `main` in-process with
 * captured output, their own environment and their own working folder.
 * `stdout` and `stderr` write the text as given (the CLI passes whole lines, newline included).
 */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  isTTY: boolean;
  /**
   * Resolves when a long-running command (`server start`, `tracker start`, `device run`) should
   * stop. The process's is SIGINT or SIGTERM; tests pass their own. Unset: the process's signals.
   */
  untilStopped?: () => Promise<void>;
}

/** Resolves on the first SIGINT or SIGTERM; the listeners are removed then (a second Ctrl-C ends the process as usual). */
export function untilSignalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

export function processIo(): CliIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
    isTTY: Boolean(process.stdout.isTTY),
    untilStopped: untilSignalled,
  };
}

/** JSON has no bigint: --json output and errors write them as decimal strings (JSON.stringify's replacer). */
export function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
