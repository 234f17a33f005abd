import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import { computeCid } from "../storage/cid";
import type { ContentStore, StoreCallOptions } from "../storage/contentStore";
import { ContentStoreError } from "../storage/contentStore";
import { catFromBlocks } from "../storage/dagBlocks";
import { importEsm } from "../storage/esm";
import { KuboStore } from "../storage/kuboStore";
import { openContentStore, type StoreConfig } from "../storage/openStore";
import { SERVER_SCHEMA, nextDownloadId as nextId, readServerCopy, readyRestoredCopy } from "./serverDatabase";
import {
  BackupError,
  BackupInputError,
  restoreTarget,
  checkDatabase,
  installDatabase,
  makeFolder,
  schemaOf,
  snapshotKnownSchema,
  statOf,
  syncPath,
  tempBeside,
} from "../database/sqliteBackup";

/**
 * Backing up the firmware server and putting a backup back (docs/guides/operations.md).
 *
 * The server's state is `<server.dataDir>/server.db` (SQLite, WAL: accepted artifacts, their block
 * index, the wrapped keys, the download log) and the artifacts themselves in its content store
 * (the embedded store's folder, `storage.path`, or a Kubo node). A backup is a folder:
 *
 *   server.db          an online, consistent copy of the database (agent/database/sqliteBackup)
 *   artifacts/<release id>.otae   every artifact the copy says is served, read from the store and
 *                      checked against its CID; the very files `release submit --artifact` takes
 *   backup.json        what was taken, when, and the artifacts with their CIDs and sizes
 *
 * The artifacts are ciphertext (the server never holds anything else), so the backup holds no
 * secret but the wrapped keys, which only their devices can open. `artifacts: false` leaves them
 * out, for a Kubo node backed up on its own. Restoring (server stopped) imports each artifact
 * into the configured store again (the same CID, by the fixed import settings), pins it, and puts
 * the database in place; an artifact neither in the backup nor pinned in the store is taken out of
 * the restored database and named, to be submitted again.
 */

export const DATABASE_FILE = "server.db";
const MANIFEST = "backup.json";
const BACKUP_KIND = "ota-ledger server backup";

export interface BackedUpArtifact {
  releaseId: string;
  cid: string;
  size: string; // bytes, decimal
  file: string | null; // relative to the backup folder; null when artifacts were left out
}

export interface ServerBackupManifest {
  kind: typeof BACKUP_KIND;
  version: 1;
  takenAt: number;
  source: { dataDir: string; store: string };
  schema: number;
  artifacts: BackedUpArtifact[];
  withdrawn: number;
  wrappedKeys: number;
  downloads: { entries: number; lastId: number | null };
}

export interface ServerBackupResult extends ServerBackupManifest {
  dir: string;
  bytes: number;
}

export interface ServerRestoreResult {
  dir: string;
  dataDir: string;
  takenAt: number;
  store: string;
  /** Artifacts imported into the store from the backup, or found pinned there already. */
  restored: { releaseId: string; cid: string; from: "backup" | "store" }[];
  /** Artifacts neither in the backup nor in the store: removed from the restored database; submit them again. */
  missing: { releaseId: string; cid: string }[];
  /** The download log's next entry id: past any id a tracker may have read before the restore. */
  nextDownloadId: number;
  replaced: string | null;
}

/** Backs up the firmware server whose data folder is `dataDir` into the new folder `dir` (replaced only with `force`), the server running or not. */
export async function backupServer(o: {
  dataDir: string;
  storage: StoreConfig;
  dir: string;
  force?: boolean;
  artifacts?: boolean;
  now?: () => number;
}): Promise<ServerBackupResult> {
  const now = o.now ?? Date.now;
  const source = path.resolve(o.dataDir, DATABASE_FILE);
  const dir = path.resolve(o.dir);
  if ((await statOf(source)) !== "file") {
    throw new BackupInputError(
      "BACKUP_SOURCE_MISSING",
      `${source} does not exist: server.dataDir (OTA_SERVER_DATA) must name the folder of the firmware server to back up`,
    );
  }
  const replace = await checkTargetFolder(
    dir,
    [path.resolve(o.dataDir), ...(o.storage.kind === "embedded" ? [path.resolve(o.storage.path)] : [])],
    o.force === true,
  );
  await makeFolder(path.dirname(dir), "backup");
  const temp = tempBeside(dir, "partial");
  await makeFolder(temp, "backup");
  let reader: (ArtifactReader & { close(): Promise<void> }) | undefined;
  try {
    const copy = path.join(temp, DATABASE_FILE);
    const schema = await snapshotKnownSchema(source, copy, SERVER_SCHEMA, "server");
    const facts = readFacts(copy);
    const artifacts: BackedUpArtifact[] = [];
    if (o.artifacts !== false && facts.serving.length > 0) {
      reader = await openArtifactReader(o.storage);
      await makeFolder(path.join(temp, "artifacts"), "backup");
      for (const a of facts.serving) {
        const file = path.join("artifacts", `${a.releaseId}.otae`);
        await exportArtifact(reader, a, path.join(temp, file));
        artifacts.push({ ...a, file });
      }
    } else {
      artifacts.push(...facts.serving.map((a) => ({ ...a, file: null })));
    }
    const manifest: ServerBackupManifest = {
      kind: BACKUP_KIND,
      version: 1,
      takenAt: now(),
      source: { dataDir: path.resolve(o.dataDir), store: o.storage.kind },
      schema,
      artifacts,
      withdrawn: facts.withdrawn,
      wrappedKeys: facts.wrappedKeys,
      downloads: facts.downloads,
    };
    await fs.writeFile(path.join(temp, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
    for (const f of [MANIFEST, DATABASE_FILE, ...artifacts.flatMap((a) => (a.file ? [a.file] : []))]) await syncPath(path.join(temp, f));
    if (artifacts.some((a) => a.file)) await syncPath(path.join(temp, "artifacts"));
    await syncPath(temp);
    await putFolderInPlace(temp, dir, replace);
    const bytes = await folderBytes(dir);
    return { dir, bytes, ...manifest };
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true });
    throw err;
  } finally {
    await reader?.close();
  }
}

/**
 * Puts the backup in `dir` back as the server's state: the server must be stopped. Every
 * artifact of the backup is imported into the configured store and pinned first (its CID checked),
 * then the database is put in place; one there already is refused unless `force`, and then kept
 * beside as `server.db.replaced-<time>`.
 */
export async function restoreServer(o: {
  dataDir: string;
  storage: StoreConfig;
  dir: string;
  force?: boolean;
  now?: () => number;
  log?: (line: string) => void;
}): Promise<ServerRestoreResult> {
  const now = o.now ?? Date.now;
  const dir = path.resolve(o.dir);
  const manifest = await readManifest(dir);
  const backupDb = path.join(dir, DATABASE_FILE);
  if ((await statOf(backupDb)) !== "file") throw new BackupInputError("BACKUP_INVALID", `${backupDb} is missing: ${dir} is not a complete server backup`);
  const check = checkDatabase(backupDb);
  if (check !== "ok") throw new BackupInputError("BACKUP_INVALID", `${backupDb} is not a sound SQLite database (${check})`);
  const schema = schemaOf(backupDb);
  if (schema > SERVER_SCHEMA) {
    throw new BackupInputError(
      "BACKUP_SCHEMA_NEWER",
      `${backupDb} is at schema ${schema}, newer than this server's ${SERVER_SCHEMA}: restore it with the ota-ledger version that took it, or a newer one`,
    );
  }
  const serving = readFacts(backupDb).serving;
  const files = new Map(manifest.artifacts.filter((a) => a.file).map((a) => [a.releaseId, a]));
  for (const a of files.values()) {
    const size = await fs.stat(path.join(dir, a.file!)).then(
      (s) => s.size,
      () => -1,
    );
    if (String(size) !== a.size)
      throw new BackupInputError("BACKUP_INVALID", `${path.join(dir, a.file!)} is missing or not ${a.size} bytes: the backup is damaged`);
  }

  const dataDir = path.resolve(o.dataDir);
  const target = await restoreTarget(dataDir, DATABASE_FILE, "firmware server", o.force === true);

  // The store first: the database is put in place only once what it serves is there.
  const restored: ServerRestoreResult["restored"] = [];
  const missing: ServerRestoreResult["missing"] = [];
  const store = await openContentStore(o.storage);
  try {
    for (const a of serving) {
      const fromBackup = files.get(a.releaseId);
      if (fromBackup && fromBackup.cid === a.cid) {
        const cid = await store.add(createReadStream(path.join(dir, fromBackup.file!), { highWaterMark: 1024 * 1024 }));
        if (cid !== a.cid)
          throw new BackupError("BACKUP_INVALID", `${fromBackup.file} imports as ${cid}, not the ${a.cid} the server accepted: the backup is damaged`);
        await store.pin(cid);
        restored.push({ releaseId: a.releaseId, cid, from: "backup" });
        o.log?.(`restored artifact of release ${a.releaseId} (${cid}) into the ${store.kind} store`);
      } else if (await store.isPinned(a.cid).catch(() => false)) {
        restored.push({ releaseId: a.releaseId, cid: a.cid, from: "store" });
      } else {
        missing.push({ releaseId: a.releaseId, cid: a.cid });
      }
    }
  } finally {
    await store.close();
  }

  const prepared = tempBeside(target, "restoring");
  const nextDownloadId = Math.max(now(), 1);
  try {
    await fs.copyFile(backupDb, prepared);
    // The log's ids go on past any a tracker read before the restore (it reads from its last id).
    readyRestoredCopy(
      prepared,
      missing.map((m) => m.releaseId),
      nextDownloadId,
    );
  } catch (err) {
    await fs.rm(prepared, { force: true });
    throw new BackupError("RESTORE_FAILED", `${backupDb} cannot be copied into ${dataDir} (${(err as Error).message})`, { cause: err });
  }
  const replaced = await installDatabase(prepared, target, now());
  const next = nextId(target);
  return { dir, dataDir, takenAt: manifest.takenAt, store: o.storage.kind, restored, missing, nextDownloadId: next, replaced };
}

// ---------------------------------------------------------------- the backup folder

/** Whether an existing `dir` may be replaced (only a server backup, with force); refuses the data folders themselves. */
async function checkTargetFolder(dir: string, live: string[], force: boolean): Promise<boolean> {
  for (const l of live) {
    if (dir === l || dir.startsWith(l + path.sep) || l.startsWith(dir + path.sep)) {
      throw new BackupInputError("BACKUP_PATH_INVALID", `${dir} overlaps the server's own data (${l}): give a folder outside it`);
    }
  }
  const kind = await statOf(dir);
  if (kind === undefined) return false;
  if (kind !== "directory") throw new BackupInputError("BACKUP_PATH_INVALID", `${dir} is a file: give the name of a folder for the backup`);
  const entries = await fs.readdir(dir);
  if (entries.length === 0) return true; // an empty folder is taken as is
  if (!force)
    throw new BackupInputError(
      "BACKUP_EXISTS",
      `${dir} is not empty: a backup is never overwritten; give another folder, or --force to replace a previous server backup`,
    );
  const manifest = await readManifest(dir).catch(() => undefined);
  if (!manifest)
    throw new BackupInputError(
      "BACKUP_PATH_INVALID",
      `${dir} holds files that are not a server backup: it is not replaced, even with --force; give another folder`,
    );
  return true;
}

/** Moves the finished temporary folder to `dir`; a previous backup there (checked) is removed once the new one is in place. */
async function putFolderInPlace(temp: string, dir: string, replace: boolean): Promise<void> {
  if ((await statOf(dir)) !== undefined) {
    if (!replace) throw new BackupInputError("BACKUP_EXISTS", `${dir} appeared while the backup was taken: nothing was overwritten`);
    const old = tempBeside(dir, "old");
    await fs.rename(dir, old);
    await fs.rename(temp, dir);
    await fs.rm(old, { recursive: true, force: true });
  } else {
    await fs.rename(temp, dir);
  }
  await syncPath(path.dirname(dir));
}

async function readManifest(dir: string): Promise<ServerBackupManifest> {
  const kind = await statOf(dir);
  if (kind !== "directory")
    throw new BackupInputError(
      kind === undefined ? "BACKUP_SOURCE_MISSING" : "BACKUP_INVALID",
      `${dir} ${kind === undefined ? "does not exist" : "is not a folder"}: give the folder \`ota-ledger server backup\` wrote`,
    );
  let m: ServerBackupManifest;
  try {
    m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST), "utf8")) as ServerBackupManifest;
  } catch (cause) {
    throw new BackupInputError("BACKUP_INVALID", `${dir} holds no readable ${MANIFEST}: give the folder \`ota-ledger server backup\` wrote`, { cause });
  }
  if (m?.kind !== BACKUP_KIND || m.version !== 1 || !Array.isArray(m.artifacts)) {
    throw new BackupInputError("BACKUP_INVALID", `${path.join(dir, MANIFEST)} is not a server backup's (kind "${BACKUP_KIND}", version 1)`);
  }
  for (const a of m.artifacts) {
    if (!/^0x[0-9a-f]{64}$/.test(a.releaseId) || (a.file !== null && a.file !== path.join("artifacts", `${a.releaseId}.otae`))) {
      throw new BackupInputError("BACKUP_INVALID", `${path.join(dir, MANIFEST)} lists an artifact it cannot hold (${JSON.stringify(a)})`);
    }
  }
  return m;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? await folderBytes(p) : (await fs.stat(p)).size;
  }
  return total;
}

// ---------------------------------------------------------------- the database's facts

function readFacts(file: string) {
  return readServerCopy(
    file,
    (cause) => new BackupInputError("BACKUP_INVALID", `${file} is not a firmware server's database (${(cause as Error).message})`, { cause }),
  );
}

// ---------------------------------------------------------------- reading artifacts

interface ArtifactReader {
  getBlock(cid: string, options?: StoreCallOptions): Promise<Uint8Array>;
}

/**
 * Reads blocks from the configured store while the server may be running: a Kubo node through its
 * RPC API; the embedded store straight from its block folder, read only (its files are written
 * whole, by rename), without starting a second IPFS node on the server's folders.
 */
async function openArtifactReader(storage: StoreConfig): Promise<ArtifactReader & { close(): Promise<void> }> {
  if (storage.kind === "kubo") {
    const kubo: ContentStore = await KuboStore.open({ url: storage.url, timeoutMs: storage.timeoutMs });
    return { getBlock: (cid, options) => kubo.getBlock(cid, options), close: () => kubo.close() };
  }
  const blocksDir = path.join(storage.path, "blocks");
  if ((await statOf(blocksDir)) !== "directory") {
    throw new BackupInputError("STORE_MISSING", `${blocksDir} does not exist: storage.path must name the embedded store of the server to back up`);
  }
  const { FsBlockstore } = await importEsm<{
    FsBlockstore: new (dir: string, init?: object) => { get(cid: unknown): AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Promise<Uint8Array> };
  }>("blockstore-fs");
  const { CID } = await importEsm<{ CID: { parse(s: string): unknown } }>("multiformats/cid");
  const blocks = new FsBlockstore(blocksDir, { createIfMissing: false });
  return {
    async getBlock(cid: string) {
      const parts: Uint8Array[] = [];
      try {
        const got = blocks.get(CID.parse(cid));
        if (got instanceof Promise) parts.push(await got);
        else for await (const part of got) parts.push(part);
      } catch (cause) {
        if ((cause as { name?: string }).name === "NotFoundError")
          throw new ContentStoreError("STORE_NOT_FOUND", `the embedded store does not hold ${cid}`, { cause });
        throw cause;
      }
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    },
    close: async () => {},
  };
}

/** Writes one artifact from the store to `file`, checking its size and CID on the way. */
async function exportArtifact(reader: ArtifactReader, a: { releaseId: string; cid: string; size: string }, file: string): Promise<void> {
  const out = await fs.open(file, "wx", 0o644);
  let written = 0;
  let cid: string;
  try {
    const pieces = async function* () {
      for await (const piece of catFromBlocks(reader, a.cid)) {
        await out.write(piece);
        written += piece.length;
        yield piece;
      }
    };
    cid = await computeCid(pieces());
  } catch (cause) {
    const why = cause instanceof ContentStoreError ? `${cause.code}: ${cause.message}` : (cause as Error).message;
    throw new BackupError(
      "BACKUP_ARTIFACT_UNREADABLE",
      `the artifact of release ${a.releaseId} (${a.cid}) cannot be read from the store (${why}): the store no longer holds what the server serves`,
      {
        cause,
      },
    );
  } finally {
    await out.close();
  }
  if (cid !== a.cid || String(written) !== a.size) {
    throw new BackupError(
      "BACKUP_ARTIFACT_MISMATCH",
      `the store's copy of release ${a.releaseId} is ${written} bytes with CID ${cid}, not the ${a.size} bytes of ${a.cid} the server accepted`,
    );
  }
}
