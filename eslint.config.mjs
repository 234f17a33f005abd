// ESLint for the TypeScript sources: typescript-eslint's recommended rules, warnings treated as
// errors in CI (`npm run lint:ts` passes --max-warnings 0). Formatting is Prettier's job.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["node_modules/", "artifacts/", "cache/", "typechain-types/", "dist/", "coverage/", "tools/ipfs-daemon/", "ignition/deployments/"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: {
        // Node.js
        process: "readonly",
        Buffer: "readonly",
        __dirname: "readonly",
        __filename: "readonly",
        require: "readonly",
        module: "writable",
        console: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        clearImmediate: "readonly",
        queueMicrotask: "readonly",
        structuredClone: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        URL: "readonly",
        URLSearchParams: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        fetch: "readonly",
        Response: "readonly",
        Request: "readonly",
        Headers: "readonly",
        performance: "readonly",
        globalThis: "readonly",
      },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    // The contracts' typed clients (typechain-types/, generated) are used inside agent/chain/ only
    // (ARCHITECTURE.md): the rest of the agents import them from agent/chain/contracts.ts, so a
    // regenerated client or another binding changes one folder. Tests, benches and scripts may
    // deploy and call contracts directly (the override below).
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "(^|/)typechain-types(/|$)",
              message: "contract clients come from agent/chain/ (agent/chain/contracts.ts), not from typechain-types directly",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["agent/chain/**", "test/**", "bench/**", "scripts/**"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // The launcher, npm's helper scripts and the test reporter are plain CommonJS for node.
    files: ["**/*.js"],
    languageOptions: { sourceType: "commonjs" },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // chai's property assertions (`.to.be.empty`, `.properAddress`) are expressions by design.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unused-expressions": "off" },
  },
  {
    // The fleet dashboard runs in the browser.
    files: ["agent/tracker/dashboard/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: { document: "readonly", window: "readonly", location: "readonly", Node: "readonly", history: "readonly" },
    },
  },
);
