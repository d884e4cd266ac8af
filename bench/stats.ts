// Medians, percentiles and the markdown table every benchmark prints.
export interface Sample {
  name: string;
  ms: number[];
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export function summarize(sample: Sample, baseline?: Sample) {
  const p50 = percentile(sample.ms, 50);
  return {
    name: sample.name,
    n: sample.ms.length,
    p50,
    p90: percentile(sample.ms, 90),
    min: Math.min(...sample.ms),
    ratio: baseline ? p50 / percentile(baseline.ms, 50) : undefined,
  };
}

export function table(rows: ReturnType<typeof summarize>[], ratioLabel: string): string {
  const f = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
  const lines = [
    `| path | n | p50 ms | p90 ms | min ms | ${ratioLabel} |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.name} | ${r.n} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.min)} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2) + 'x'} |`),
  ];
  return lines.join('\n');
}

export async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
