// Type-aware lint. Floating and misused promises are errors: async failover code dies of them.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".edgeward/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["*.js", "bin/*.js", "scripts/*.mjs", "examples/services/*.mjs"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-globals": [
        "error",
        "setTimeout",
        "setInterval",
        "setImmediate",
        "process",
        "performance",
      ],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "core gets time from the Clock port" },
        {
          object: "Math",
          property: "random",
          message: "core gets randomness from the Random port",
        },
      ],
      "no-restricted-syntax": [
        "error",
        {
          selector: "NewExpression[callee.name='Date']",
          message: "core gets time from the Clock port",
        },
      ],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            "node:*",
            "fs",
            "net",
            "http",
            "child_process",
            "os",
            "../runtime/*",
            "../../runtime/*",
            "../server/*",
            "../agent/*",
            "../sim/*",
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: "readonly", URL: "readonly", console: "readonly" } },
  },
);
