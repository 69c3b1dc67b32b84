// The API the example workers serve. Callers import only its type.

/** An application error: its name, code, own fields and cause cross the wire intact. */
export class QuotaExceededError extends Error {
  readonly code = 'E_QUOTA';

  constructor(
    message: string,
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'QuotaExceededError';
  }
}

/** A result together with the pid of the worker process that produced it. */
export interface Served<T> {
  result: T;
  pid: number;
}

const served = <T>(result: T): Served<T> => ({ result, pid: process.pid });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Builds the API object; `stepMs` sets the pace of the slow `jobs.resize`. */
export function createWorkerApi(stepMs = 100) {
  return {
    math: {
      add: (a: number, b: number) => served(a + b),
    },
    text: {
      reverse: (s: string) => served([...s].reverse().join('')),
    },
    jobs: {
      /** Slow work reporting progress through a callback the caller passed. */
      async resize(image: { name: string; width: number }, onProgress: (percent: number, pid: number) => void) {
        for (const percent of [25, 50, 75, 100]) {
          await sleep(stepMs);
          onProgress(percent, process.pid);
        }
        return served({ name: image.name, width: Math.round(image.width / 2), finishedAt: new Date() });
      },
      async sleep(ms: number) {
        await sleep(ms);
        return served(ms);
      },
      charge(amount: number) {
        throw new QuotaExceededError(`cannot charge ${amount}: monthly quota used up`, 100, {
          cause: new RangeError('quota 100 < requested 250'),
        });
      },
    },
  };
}

/** What the workers expose; a caller's `getAPI()` returns the typed proxy of it. */
export type WorkerAPI = ReturnType<typeof createWorkerApi>;
