import type { StoreConnection } from "./connection";

/** Replay marks that must survive a restart (issue 15, table replay_marks): values that only rise. */
export class MarkStore {
  constructor(private readonly c: StoreConnection) {}

  /** A replay mark (e.g. "parent-decisions": the issue time of the last decisions taken from the parent); 0 when never set. */
  get(name: string): number {
    return (this.c.sql(`SELECT value FROM replay_marks WHERE name = ?`).pluck().get(name) as number | undefined) ?? 0;
  }

  /** Raises a replay mark to `value` (never lowers it); durable when it returns. */
  raise(name: string, value: number): void {
    this.c.sql(`INSERT INTO replay_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`).run(name, value);
  }
}
