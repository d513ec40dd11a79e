import { availableParallelism } from 'node:os';
import { createHash, webcrypto } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * SHA-256 of chunk bytes, kept off the main thread where that pays. A mount reading a large file hashes
 * every byte it receives: on the main thread that was a quarter of its time, and WebCrypto (which runs on
 * the thread pool) first copies its input there. sha256Moving lends the bytes' memory to a hashing worker
 * instead (transferred there and back, not copied).
 */

/** Below this, hashing on the calling thread costs less than handing the bytes to another thread. */
const INLINE_BYTES = 64 * 1024;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 that does not stall the event loop on large inputs. */
export function sha256Async(data: Uint8Array): Promise<string> {
  if (data.byteLength <= INLINE_BYTES) return Promise.resolve(sha256(data));
  return webcrypto.subtle.digest('SHA-256', data).then((digest) => Buffer.from(digest).toString('hex'));
}

/**
 * SHA-256 on a worker thread, which borrows the bytes' memory: `data` is empty until this resolves, and
 * the bytes come back as the result's `data`. Bytes that share their memory with others (a slice of a
 * bigger buffer) cannot move; sha256Async hashes them instead.
 */
export async function sha256Moving(data: Buffer): Promise<{ hash: string; data: Buffer }> {
  const buffer = data.buffer;
  const owned = buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength;
  if (!owned || data.byteLength <= INLINE_BYTES) return { hash: await sha256Async(data), data };
  const { hex, returned } = await hashWorkers.hash(buffer);
  return { hash: hex, data: Buffer.from(returned) };
}

/** A worker's answer: the hash, and the memory it was lent. */
interface Hashed {
  hex: string;
  returned: ArrayBuffer;
}

interface Job {
  resolve: (result: Hashed) => void;
  reject: (err: Error) => void;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buffer }) => {
  const hex = createHash('sha256').update(new Uint8Array(buffer)).digest('hex');
  parentPort.postMessage({ id, hex, returned: buffer }, [buffer]);
});
`;

class HashWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  dead = false;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    // An idle worker must not keep a process alive; a busy one must (someone awaits its answer).
    this.worker.unref();
    this.worker.on('message', ({ id, ...hashed }: Hashed & { id: number }) => {
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      if (this.jobs.size === 0) this.worker.unref();
      job?.resolve(hashed);
    });
    const fail = (err: Error): void => {
      this.dead = true;
      for (const job of this.jobs.values()) job.reject(err);
      this.jobs.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`hash worker exited with code ${code}`)));
  }

  get pending(): number {
    return this.jobs.size;
  }

  hash(buffer: ArrayBuffer): Promise<Hashed> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.jobs.set(id, { resolve, reject });
      if (this.jobs.size === 1) this.worker.ref();
      this.worker.postMessage({ id, buffer }, [buffer]);
    });
  }
}

/** Hashing workers (one per core but one, at most two), started on first use; a job goes to the least busy. */
class HashWorkers {
  private workers: HashWorker[] = [];
  private readonly size = Math.max(1, Math.min(2, availableParallelism() - 1));

  hash(buffer: ArrayBuffer): Promise<Hashed> {
    this.workers = this.workers.filter((w) => !w.dead);
    let worker = this.workers.reduce<HashWorker | undefined>((best, w) => (best && best.pending <= w.pending ? best : w), undefined);
    if (!worker || (worker.pending > 0 && this.workers.length < this.size)) {
      worker = new HashWorker();
      this.workers.push(worker);
    }
    return worker.hash(buffer);
  }
}

const hashWorkers = new HashWorkers();
