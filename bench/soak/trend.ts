/** Least-squares slope of `ys` over `xs` (units of y per unit of x). */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface Growth {
  mean: number;
  /** Growth per hour, from the least-squares slope over the last half of the samples. */
  perHour: number;
  /** It would double within an hour, and the growth is above the noise floor. */
  unbounded: boolean;
}

/** `samples`: [ms since start, value]. Judges the last half only (the first half is warm-up). */
export function judgeGrowth(samples: Array<[number, number]>, noiseFloorPerHour: number): Growth {
  const tail = samples.slice(Math.floor(samples.length / 2));
  const mean = tail.reduce((s, [, v]) => s + v, 0) / Math.max(1, tail.length);
  const perHour = slope(tail.map(([t]) => t / 3_600_000), tail.map(([, v]) => v));
  return { mean, perHour, unbounded: tail.length >= 4 && perHour > noiseFloorPerHour && perHour >= mean };
}
