import { task, wait } from "stasis/sdk";

export const hello = task({
  id: "hello",
  run: async (payload: { name?: string }) => {
    return { greeting: `Hello, ${payload.name ?? "world"}!` };
  },
});

export const helloLater = task({
  id: "hello-later",
  machine: { preset: "small-1x" },
  retry: { maxAttempts: 5 },
  run: async (payload: { name?: string; seconds?: number }) => {
    await wait.for({ seconds: payload.seconds ?? 1 });
    return { greeting: `Hello again, ${payload.name ?? "world"}!` };
  },
});
