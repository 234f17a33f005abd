// Preloaded into a child process (`node --require exitWithParent.js ...`): the child ends when its
// parent does, however the parent ended (a crash, an abort, SIGKILL), because the parent holds the
// write end of the child's stdin pipe and the system closes it with the parent. Without this, a
// local chain outlives a test run or a demo that died, and holds its port.
"use strict";
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
