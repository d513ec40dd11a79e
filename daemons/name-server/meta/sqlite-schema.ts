/** The SQLite schema. Times of inodes are decimal nanosecond strings (exact); bookkeeping times are ms. */
export const SCHEMA_VERSION = 1;

export const schemaSql = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inodes (
  ino INTEGER PRIMARY KEY,
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  nlink INTEGER NOT NULL,
  rdev INTEGER NOT NULL DEFAULT 0,
  atime TEXT NOT NULL,
  mtime TEXT NOT NULL,
  ctime TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 0,
  target TEXT
);
CREATE TABLE IF NOT EXISTS dentries (
  parent INTEGER NOT NULL,
  name TEXT NOT NULL,
  ino INTEGER NOT NULL,
  PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dentries_by_ino ON dentries (ino);
CREATE TABLE IF NOT EXISTS file_chunks (
  ino INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (ino, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  refs INTEGER NOT NULL DEFAULT 0,
  gc_after INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_collectable ON chunks (gc_after) WHERE refs = 0;
CREATE INDEX IF NOT EXISTS chunks_referenced ON chunks (refs) WHERE refs > 0;
CREATE TABLE IF NOT EXISTS replicas (
  hash TEXT NOT NULL,
  server_id TEXT NOT NULL,
  PRIMARY KEY (hash, server_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replicas_by_server ON replicas (server_id);
-- Chunks the name server keeps itself: a small file's whole content, in place of copies on storage servers.
-- (A rowid table: its rows are blobs of up to a MiB, too large for a WITHOUT ROWID b-tree.)
CREATE TABLE IF NOT EXISTS inline_chunks (
  hash TEXT PRIMARY KEY,
  data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS servers (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  capacity INTEGER NOT NULL,
  free INTEGER NOT NULL,
  registered_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delete_queue (
  server_id TEXT NOT NULL,
  hash TEXT NOT NULL,
  queued_at INTEGER NOT NULL,
  PRIMARY KEY (server_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xattrs (
  ino INTEGER NOT NULL,
  name TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ino, name)
) WITHOUT ROWID;
-- Appends made lately, by their writer's key: one sent again after a restart of the name server (its answer
-- lost) is answered, not made twice. \`at\` in ms.
CREATE TABLE IF NOT EXISTS appends_made (
  key TEXT PRIMARY KEY,
  ino INTEGER NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS appends_made_by_time ON appends_made (at);
`;
