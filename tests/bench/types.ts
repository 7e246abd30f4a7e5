/** One measured figure. Each `tests/bench/<area>.bench.ts` exports `run(): Promise<BenchRow[]>`. */
export interface BenchRow {
  suite: string;
  name: string;
  value: number;
  unit: string;
  /** e.g. "0.41x v86", "ratio to raw 0.93" */
  note?: string;
}
