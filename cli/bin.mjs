#!/usr/bin/env node
// The `stasis` command. Sources are TypeScript, run through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
