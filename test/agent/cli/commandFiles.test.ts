import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { COMMANDS } from "../../../agent/cli/main";
import { CliContext } from "../../../agent/cli/context";
import type { RegisterCommand } from "../../../agent/cli/program";
import type { CliIo } from "../../../agent/cli/io";

const COMMANDS_DIR = path.join(__dirname, "..", "..", "..", "agent", "cli", "commands");

/** The top-level commands `register` adds to an empty program. */
function commandsOf(register: RegisterCommand): string[] {
  const program = new Command("ota-ledger");
  const io = { stdout: () => {}, stderr: () => {}, env: {}, cwd: process.cwd(), isTTY: false } as CliIo;
  register(program, new CliContext(io, () => ({})));
  return program.commands.map((c) => c.name());
}

/** Every .ts file under agent/cli/commands/, as paths relative to it. */
function sourceFiles(dir = COMMANDS_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)).map((f) => `${e.name}/${f}`) : e.name.endsWith(".ts") ? [e.name] : [],
  );
}

describe("agent/cli/commands: one file per top-level command (issue 20)", () => {
  it("each top-level command is registered by exactly one file named after it, agent/cli/commands/<name>.ts, and main registers every one", () => {
    const files = readdirSync(COMMANDS_DIR)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => f.slice(0, -3))
      .sort();
    for (const name of files) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const file = require(path.join(COMMANDS_DIR, name)) as { register?: RegisterCommand };
      expect(file.register, `commands/${name}.ts exports register`).to.be.a("function");
      expect(commandsOf(file.register!), `what commands/${name}.ts registers`).to.deep.equal([name]);
    }
    const registered = COMMANDS.flatMap(commandsOf);
    expect(new Set(registered).size, "each command once").to.equal(registered.length);
    expect([...registered].sort()).to.deep.equal(files);
  });

  it("no command file finds a command registered elsewhere to add to it; a subcommand file adds to the command it is given", () => {
    for (const file of sourceFiles()) {
      const text = readFileSync(path.join(COMMANDS_DIR, file), "utf8");
      expect(text, file).not.to.match(/\.commands\s*\.\s*find\s*\(/);
      if (file.includes("/")) expect(text, `${file} adds to its command, not to the program`).not.to.match(/\bprogram\.command\(/);
    }
  });
});
