// The primary asking one worker something over IPC and waiting for its answer: the metrics of a
// scrape (metrics.ts), a purge (src/cache/purge.ts), closing its listener at shutdown
// (primary.ts). One place for the id, the timeout and the worker that exits or whose channel is
// closed mid-question.
import type { Worker } from 'node:cluster';

/** Why a worker gave no answer: it took longer than the timeout, exited, or could not be sent the question. */
export type Unanswered = 'timeout' | 'exit' | 'unsent';
export type AskResult<T> = { answered: true; value: T } | { answered: false; reason: Unanswered };

export interface Asker<T> {
  /** Sends `message` plus an `id` to `worker`; settles on the answer with that id, the timeout, or the worker's exit. */
  ask(worker: Worker, message: { type: string; [key: string]: unknown }): Promise<AskResult<T>>;
  /** Wire to the answers (cluster.on('message')): the answer to question `id`. Unknown ids are ignored. */
  answer(id: number, value: T): void;
}

export function createAsker<T>(timeoutMs: number): Asker<T> {
  let nextId = 0;
  const pending = new Map<number, (result: AskResult<T>) => void>();
  return {
    ask: (worker, message) =>
      new Promise((resolve) => {
        const id = nextId++;
        const done = (result: AskResult<T>) => {
          clearTimeout(timer);
          pending.delete(id);
          worker.off('exit', gone);
          resolve(result);
        };
        // A worker that exits will never answer: settle at once, not after the timeout.
        const gone = () => done({ answered: false, reason: 'exit' });
        const timer = setTimeout(() => done({ answered: false, reason: 'timeout' }), timeoutMs);
        pending.set(id, done);
        worker.once('exit', gone);
        // A closed IPC channel (the worker is exiting) is reported to the callback, not thrown.
        worker.send({ ...message, id }, (err: Error | null) => {
          if (err) done({ answered: false, reason: 'unsent' });
        });
      }),
    answer(id, value) {
      pending.get(id)?.({ answered: true, value });
    },
  };
}
