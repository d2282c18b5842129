/** Per field, the median of the samples' values (each sample an object of numbers). */
export function medians<T extends object>(samples: T[]): Record<keyof T, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(samples[0]!)) {
    const sorted = samples.map((s) => (s as Record<string, number>)[key]!).sort((a, b) => a - b);
    out[key] = sorted[Math.floor(sorted.length / 2)]!;
  }
  return out as Record<keyof T, number>;
}
