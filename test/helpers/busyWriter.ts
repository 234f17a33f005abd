import { Worker } from "node:worker_threads";
import { SQLITE_PACKAGE } from "../../agent/database/sqlite";

/**
 * Another connection that keeps committing to a live SQLite database, on a thread of its own, so
 * that writes land while a backup copies the file (in the test's own thread a synchronous SQLite
 * call lets nothing else run). Each round runs `statements` in one transaction, `$n` being the
 * round number, then pauses a millisecond so that the service's own writes get the lock too.
 * Only for blind writes (INSERTs): a service whose transactions read before they write would be
 * refused with SQLITE_BUSY_SNAPSHOT by a second writer.
 */
export async function busyWriter(file: string, statements: string[]) {
  const commits = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `
    const { parentPort, workerData } = require("node:worker_threads");
    const Database = require(workerData.sqlite);
    const db = new Database(workerData.file, { timeout: 30000 });
    const round = workerData.statements.map((s) => db.prepare(s));
    const run = db.transaction((n) => { for (const s of round) s.run({ n }); });
    let stop = false;
    parentPort.on("message", () => { stop = true; });
    parentPort.postMessage("ready");
    let n = 0;
    const loop = () => {
      if (stop) { db.close(); parentPort.postMessage("stopped"); return; }
      run(++n);
      Atomics.add(workerData.commits, 0, 1);
      setTimeout(loop, 1);
    };
    loop();
    `,
    { eval: true, workerData: { sqlite: require.resolve(SQLITE_PACKAGE), file, statements, commits } },
  );
  const messages: string[] = [];
  let failure: Error | undefined;
  worker.on("message", (m: string) => messages.push(m));
  worker.on("error", (err) => (failure = err));
  const until = async (m: string) => {
    while (!messages.includes(m)) {
      if (failure) throw failure;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until("ready");
  return {
    commits: () => Atomics.load(commits, 0),
    /** Waits until at least `n` more rounds are committed. */
    async more(n: number) {
      const target = Atomics.load(commits, 0) + n;
      while (Atomics.load(commits, 0) < target) {
        if (failure) throw failure;
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop(): Promise<number> {
      worker.postMessage("stop");
      await until("stopped");
      await worker.terminate();
      return Atomics.load(commits, 0);
    },
  };
}
