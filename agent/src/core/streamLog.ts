// A bounded, replayable log of one stream's numbered chunks (an execution's output, a terminal's): kept
// while the stream runs and for a while after it ended, so a reader that lost its connection can resume
// from the last sequence number it saw without loss or duplicates. When the log outgrows its byte budget
// the oldest chunks go, and a reader resuming from before them is told exactly which numbers it missed.

export interface Sequenced {
  seq: number;
}

export interface LogReader<T, E> {
  item(chunk: T): void;
  /** Chunks `from`..`to` were dropped before this reader could get them. */
  gap(from: number, to: number): void;
  end(outcome: E): void;
}

export interface Unsubscribe {
  (): void;
}

export class StreamLog<T extends Sequenced, E> {
  private readonly items: T[] = [];
  private readonly readers = new Set<LogReader<T, E>>();
  private bytes = 0;
  private outcome: { value: E } | undefined;
  lastSeq = 0;
  endedAtMs: number | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (chunk: T) => number,
  ) {}

  get ended(): boolean {
    return this.outcome !== undefined;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** The oldest sequence number still kept (lastSeq + 1 when nothing is). */
  get firstSeq(): number {
    return this.items[0]?.seq ?? this.lastSeq + 1;
  }

  push(chunk: T): void {
    if (this.outcome) return; // nothing follows the end
    this.items.push(chunk);
    this.bytes += this.sizeOf(chunk);
    this.lastSeq = chunk.seq;
    while (this.bytes > this.maxBytes && this.items.length > 1) this.bytes -= this.sizeOf(this.items.shift() as T);
    for (const r of this.readers) r.item(chunk);
  }

  end(outcome: E): void {
    if (this.outcome) return;
    this.outcome = { value: outcome };
    this.endedAtMs = Date.now();
    for (const r of [...this.readers]) r.end(outcome);
    this.readers.clear();
  }

  /** Kept chunks numbered above `after` (at most `limit`), and the numbers lost to the budget. */
  since(after: number, limit = Infinity): { items: T[]; gap?: { from: number; to: number } } {
    const first = this.firstSeq;
    const gap = after + 1 < first ? { from: after + 1, to: first - 1 } : undefined;
    const start = this.items.findIndex((c) => c.seq > after);
    const items = start < 0 ? [] : this.items.slice(start, limit === Infinity ? undefined : start + limit);
    return gap ? { items, gap } : { items };
  }

  /** Replays what is kept after `after`, then follows live until the end (or until unsubscribed). */
  subscribe(after: number, reader: LogReader<T, E>): Unsubscribe {
    const { items, gap } = this.since(after);
    if (gap) reader.gap(gap.from, gap.to);
    for (const c of items) reader.item(c);
    if (this.outcome) {
      reader.end(this.outcome.value);
      return () => {};
    }
    this.readers.add(reader);
    return () => this.readers.delete(reader);
  }

  get readerCount(): number {
    return this.readers.size;
  }
}
