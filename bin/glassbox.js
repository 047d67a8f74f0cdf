#!/usr/bin/env node
// Entry point for the `glassbox` command. It runs the compiled JavaScript in .build/ when that
// build is newer than every source file (made by `npm ci` through scripts/build.mjs), because
// plain Node starts several times faster; otherwise it runs the TypeScript sources through tsx,
// so an edited checkout never runs stale code. The choice is lib/load.js's, which the library
// entry points share.
import { load } from "../lib/load.js"

await (await load("src/cli/main")).runMain()
