/**
 * Terminal output of the command line: colour only on a TTY (and never with
 * `NO_COLOR` set or `TERM=dumb`), tables that fit the terminal's width, and
 * human units for times and sizes.
 *
 * @module
 */

/** Where a command writes, and whether it may colour. */
export interface Output {
  /** Writes one line or block to stdout. */
  out(text: string): void;
  /** Writes to stderr. */
  err(text: string): void;
  /** Colours (identity functions when colour is off). */
  readonly style: Style;
  /** Width available for a table line. */
  readonly width: number;
}

/** The few styles the CLI uses. */
export interface Style {
  readonly bold: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly red: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly cyan: (text: string) => string;
}

const plain = (text: string): string => text;
const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

/** Whether to colour `stream`: a TTY, `NO_COLOR` unset or empty (https://no-color.org), `TERM` not `dumb`. */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** The styles, coloured or not. */
export function makeStyle(colour: boolean): Style {
  if (!colour) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { bold: ansi(1, 22), dim: ansi(2, 22), red: ansi(31, 39), green: ansi(32, 39), yellow: ansi(33, 39), cyan: ansi(36, 39) };
}

/** The process's output. */
export function processOutput(): Output {
  const colour = colourWanted(process.stdout, process.env);
  return {
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
    style: makeStyle(colour),
    width: process.stdout.isTTY === true && process.stdout.columns > 0 ? process.stdout.columns : 120,
  };
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** Printed width of `text` (escape codes excluded). */
function visible(text: string): number {
  return text.replace(ANSI, '').length;
}

function cut(text: string, width: number): string {
  const bare = text.replace(ANSI, '');
  if (bare.length <= width) return text;
  return `${bare.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * A table: a header row, then rows, columns separated by two spaces. When it
 * is wider than `width`, the widest columns are cut (with `…`) until it fits.
 */
export function table(o: Output, header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const total = (): number => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  while (total() > o.width) {
    const widest = widths.indexOf(Math.max(...widths));
    if ((widths[widest] ?? 0) <= 8) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  const line = (cells: readonly string[], head: boolean): string =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        const text = cut(c, w);
        const padded = i === cells.length - 1 ? text : text + ' '.repeat(Math.max(0, w - visible(text)));
        return head ? o.style.bold(padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(header, true), ...rows.map((r) => line(r, false))].join('\n');
}

/** `850 ms`, `12.3 s`, `4 min 2 s`, `3 h 5 min`. */
export function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
}

/** `512 B`, `1.5 KB`, `2.0 MB`. */
export function bytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A clock time of day, `HH:MM:SS.mmm` (UTC). */
export function clock(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 23);
}
