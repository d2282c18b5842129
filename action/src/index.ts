// The bundle's entry (action/dist/index.js): GitHub's runner executes it; local-action calls run() from main.ts.
import { run } from "./main.ts";

await run();
