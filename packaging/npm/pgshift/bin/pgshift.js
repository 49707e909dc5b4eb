#!/usr/bin/env node
// Runs the pgshift binary built for this platform. npm installs it as one of this package's
// optional dependencies, skipping those whose "os"/"cpu" do not match (the pattern esbuild and
// squawk use): no download at install time, no postinstall script.
"use strict";

const { spawn } = require("child_process");

// `${process.platform} ${process.arch}` -> the package holding that binary. Each one is also
// in package.json's optionalDependencies and has its folder in packaging/npm/ (a test checks).
const PLATFORMS = {
  "linux x64": "@pgshift/linux-x64",
};

function fail(message) {
  process.stderr.write(`pgshift: ${message}\n`);
  process.exit(2);
}

const platform = `${process.platform} ${process.arch}`;
const pkg = PLATFORMS[platform];
if (!pkg) {
  fail(
    `no prebuilt binary for ${platform} yet; build it from source ` +
      "(a Rust toolchain, then `scripts/dev.sh example` in a clone of pgshift)",
  );
}
let binary;
try {
  binary = require.resolve(`${pkg}/bin/pgshift`);
} catch (e) {
  fail(
    `${pkg}, the package holding the binary, is not installed: npm leaves optional ` +
      "dependencies out with --omit=optional (or --no-optional), or when their download " +
      "failed. Install pgshift again without that option.",
  );
}

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
// A signal sent to this process only (`kill`, a container stopping) reaches pgshift too, so
// it can cancel its statement on the server; pgshift ignores the copy a terminal also sends.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (e) => fail(`cannot run ${binary}: ${e.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code === null ? 1 : code);
  }
});
