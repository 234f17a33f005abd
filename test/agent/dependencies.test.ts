import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Every .ts and .js file under agent/: what `npm run build` ships. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

/** The package a bare specifier names: "@scope/name/sub" → "@scope/name", "name/sub" → "name". */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** The packages a file loads at run time: static imports, re-exports, require() and importEsm(). Type-only imports load nothing. */
function runtimeImports(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*import\s+(?!type\s)(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm,
    /^\s*export\s+(?!type\s)[^"';]*?\s+from\s+["']([^"']+)["']/gm,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
    // the type argument may hold arrow types (=>) and span lines
    /\bimportEsm(?:<[\s\S]*?>)?\(\s*["']([^"']+)["']\s*,?\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1]);
  return found.filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !builtinModules.includes(s)).map(packageOf);
}

describe("what ships: the agents' run-time imports are production dependencies (npm ci --omit=dev, npm install -g of the package)", () => {
  const used = new Map<string, string>();
  for (const file of sources(path.join(ROOT, "agent"))) {
    for (const name of runtimeImports(readFileSync(file, "utf8"))) if (!used.has(name)) used.set(name, path.relative(ROOT, file));
  }

  it("every package that agent/ loads at run time is in dependencies, none only in devDependencies", () => {
    expect(used.size, "the scan found the agents' imports").to.be.greaterThan(5);
    const missing = [...used].filter(([name]) => !(name in pkg.dependencies)).map(([name, file]) => `${name} (first loaded by ${file})`);
    expect(missing, "move these to dependencies").to.deep.equal([]);
  });

  it("no development tool is a production dependency (Hardhat, solc, typechain, TypeScript, test, lint and bundling tools)", () => {
    const tools =
      /^(hardhat|@nomicfoundation\/|solc$|solhint$|solidity-coverage$|typechain$|@typechain\/|ts-node$|typescript$|@types\/|mocha$|chai$|fast-check$|playwright|esbuild$|eslint|@eslint\/|typescript-eslint$|prettier$)/;
    expect(Object.keys(pkg.dependencies).filter((name) => tools.test(name))).to.deep.equal([]);
  });

  it("every production dependency is loaded by agent/ (an unused one only makes every install bigger)", () => {
    expect(Object.keys(pkg.dependencies).filter((name) => !used.has(name))).to.deep.equal([]);
  });

  it("the scan sees what it is meant to see: a value import, a require, an importEsm; not a type-only import", () => {
    const text = [
      'import { Wallet } from "ethers";',
      'import type { Foo } from "not-loaded";',
      'export { thing } from "@scope/pkg/sub";',
      'const x = require("commander");',
      'const h = await importEsm<{ create(o: object): Promise<unknown> }>(\n  "helia",\n);',
      'import path from "node:path";',
      'import { y } from "./local";',
    ].join("\n");
    expect(runtimeImports(text).sort()).to.deep.equal(["@scope/pkg", "commander", "ethers", "helia"]);
  });
});
