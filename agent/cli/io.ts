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
}

export function processIo(): CliIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
    isTTY: Boolean(process.stdout.isTTY),
  };
}
