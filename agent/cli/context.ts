import { jsonValue, untilSignalled, type CliIo } from "./io";
import { loadConfig, type OtaConfig } from "./config";
import { openChain, withSigner, type Connection, type ReadOnlyConnection } from "./connect";

export type { Connection, ReadOnlyConnection } from "./connect";

/** The options every command accepts (declared on the root program). */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  rpc?: string;
}

/**
 * What a command needs from the run it is part of: the configuration (read on first use, so
 * `--help` and usage errors never need one), the chain (opened once and checked), and output in
 * the chosen form. One context per `main` call; `close` releases the chain.
 */
export class CliContext {
  #config?: Promise<OtaConfig>;
  #chain?: Promise<ReadOnlyConnection>;

  constructor(
    readonly io: CliIo,
    private readonly globals: () => GlobalOptions,
  ) {}

  /** Whether output is JSON (--json). */
  get json(): boolean {
    return this.globals().json === true;
  }

  config(): Promise<OtaConfig> {
    const { config, rpc } = this.globals();
    this.#config ??= loadConfig({ cwd: this.io.cwd, env: this.io.env, configPath: config, rpcUrl: rpc });
    return this.#config;
  }

  /** The chain with the configured key: for commands that send transactions or sign. */
  async connect(): Promise<Connection> {
    const config = await this.config();
    return withSigner(config, await this.connectReadOnly());
  }

  /** The chain without a key: for commands that only read. */
  async connectReadOnly(): Promise<ReadOnlyConnection> {
    this.#chain ??= this.config().then(openChain);
    return this.#chain;
  }

  /** Resolves when a long-running command should stop: SIGINT or SIGTERM, or the test's own signal (CliIo.untilStopped). */
  untilStopped(): Promise<void> {
    return (this.io.untilStopped ?? untilSignalled)();
  }

  /** Prints `result` as one JSON document with --json, else the human text. */
  output(result: object, human: string): void {
    if (this.json) this.io.stdout(JSON.stringify(result, jsonValue, 2) + "\n");
    else this.io.stdout(human.endsWith("\n") ? human : human + "\n");
  }

  async close(): Promise<void> {
    const chain = this.#chain;
    this.#chain = undefined;
    if (!chain) return;
    const opened = await chain.catch(() => undefined);
    opened?.provider.destroy();
  }
}
