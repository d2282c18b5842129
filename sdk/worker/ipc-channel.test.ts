import { expect, it } from "vitest";
import { RunnerToTask } from "../../schemas/ipc.ts";
import { RUNNER_TO_TASK_TYPES } from "../../schemas/ipc-calls.ts";
import { readRunnerMessage } from "./ipc-channel.ts";

it("takes every type of message the runner's schema has, and names a line that is none of them", () => {
  expect([...RUNNER_TO_TASK_TYPES].sort()).toEqual(RunnerToTask.options.map((option) => option.shape.type.value).sort());
  expect(readRunnerMessage('{"type":"cancel","reason":"stop"}')).toEqual({ type: "cancel", reason: "stop" });
  expect(() => readRunnerMessage('{"type":"explode"}')).toThrow('not a message from the runner: {"type":"explode"}');
  expect(() => readRunnerMessage("null")).toThrow("not a message from the runner: null");
  expect(() => readRunnerMessage("[1]")).toThrow("not a message from the runner: [1]");
});
