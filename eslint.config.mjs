import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.venv/**', '.orbit/**', 'test-output/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The shared contract is imported by workflow code too: node-free, no I/O, no env, nothing above it.
    files: ['src/common/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'crypto', 'ssh2', 'net', 'zod', 'yaml'], message: 'src/common is node-free: plain data, constants and pure functions.' },
          { group: ['../*'], message: 'src/common imports nothing of Orbit outside itself.' },
        ],
      }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'src/common reads no environment.' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node or I/O modules, no env.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'crypto', 'ssh2', 'net'], message: 'Workflow code must be deterministic: no Node or I/O modules.' },
        ],
        paths: [
          { name: '../activities', allowTypeImports: true, message: 'Import activities as types only.' },
          { name: '../activities/index', allowTypeImports: true, message: 'Import activities as types only.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'process', property: 'env', message: 'Pass config as workflow arguments.' },
        { object: 'Math', property: 'random', message: 'Use uuid4() from @temporalio/workflow.' },
      ],
    },
  },
);
