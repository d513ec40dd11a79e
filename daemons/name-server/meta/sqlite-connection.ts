import sqlite3 from 'sqlite3';

export type Params = Record<string, unknown> | unknown[];

/**
 * A promise face over one sqlite3 connection, with prepared statements cached by SQL text (the same few
 * statements run millions of times).
 */
export class SqliteConnection {
  private readonly statements = new Map<string, sqlite3.Statement>();

  private constructor(private readonly db: sqlite3.Database) {}

  static open(file: string, readOnly: boolean): Promise<SqliteConnection> {
    const mode = readOnly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, mode, (err) => (err ? reject(err) : resolve(new SqliteConnection(db))));
    });
  }

  private statement(sql: string): sqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * The first row. Runs the statement to completion (as `all` does): a statement left mid-way, as
   * sqlite3's own `get` leaves it, keeps its read snapshot open and later reads would not see new commits.
   */
  async get<T>(sql: string, params: Params = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  all<T>(sql: string, params: Params = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.statement(sql).all(params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
    });
  }

  run(sql: string, params: Params = []): Promise<{ changes: number; lastID: number }> {
    return new Promise((resolve, reject) => {
      this.statement(sql).run(params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  /** Runs SQL text with no parameters (schema, pragmas, transaction control). */
  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    for (const stmt of this.statements.values()) await new Promise<void>((resolve) => stmt.finalize(() => resolve()));
    this.statements.clear();
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}
