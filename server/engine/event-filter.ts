import type { EventFilter } from "../../schemas/index.ts";

type Scalar = string | number | boolean | null;

/**
 * `{ type: ["checkout"], cart: { currency: ["EUR", "USD"] } }` matches a payload whose `type` is
 * "checkout" and whose `cart.currency` is EUR or USD. A list accepts a scalar equal to one of its
 * values, or an array with at least one such element. Fields the filter does not name are free.
 */
export function matchesFilter(filter: EventFilter | null | undefined, payload: unknown): boolean {
  if (!filter) return true;
  if (typeof payload !== "object" || payload === null) return Object.keys(filter).length === 0;
  const record = payload as Record<string, unknown>;
  for (const [field, accepted] of Object.entries(filter)) {
    const value = record[field];
    if (Array.isArray(accepted)) {
      const candidates = Array.isArray(value) ? value : [value];
      if (!candidates.some((c) => (accepted as Scalar[]).some((a) => a === c))) return false;
    } else if (!matchesFilter(accepted, value)) {
      return false;
    }
  }
  return true;
}
