// Fails when contract line coverage (from `hardhat coverage`'s coverage.json) is below the floor.
const fs = require("node:fs");

const floor = Number(process.argv[2] ?? 95);
const data = JSON.parse(fs.readFileSync("coverage.json", "utf8"));
let total = 0;
let covered = 0;
for (const file of Object.values(data)) {
  for (const hits of Object.values(file.l)) {
    total += 1;
    if (hits > 0) covered += 1;
  }
}
const pct = total === 0 ? 0 : (100 * covered) / total;
console.log(`contract line coverage: ${pct.toFixed(2)}% (${covered}/${total} lines; floor ${floor}%)`);
if (pct < floor) process.exit(1);
