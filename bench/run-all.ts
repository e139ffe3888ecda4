/**
 * `npm run bench`: runs every benchmark in turn, each its own process, against one Temporal dev
 * server started here on free ports (or `--temporal HOST:PORT`), then repeats the lines that carry a
 * target. Arguments are passed on to each script (`npm run bench -- --tiny`); `--only a,b` picks scripts.
 * Exits non-zero when a script fails; a missed target is reported, not an error.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { machine, parseArgs, REPO, runMain, temporal } from './lib';

export const SCRIPTS = ['overhead', 'collect', 'hostloss', 'scale', 'fleet', 'store', 'cli', 'health', 'workdir'] as const;

async function main(): Promise<void> {
  const args = parseArgs();
  const only = args.str('only', SCRIPTS.join(',')).split(',');
  const passOn = process.argv.slice(2).filter((a, i, all) => a !== '--only' && all[i - 1] !== '--only' && !a.startsWith('--only='));
  console.log(`# orbit benchmarks ${new Date().toISOString()}: ${await machine()}`);
  console.log(`# command: npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`);
  const t = await temporal(args);
  const summary: string[] = [];
  let failed = 0;
  try {
    for (const name of SCRIPTS.filter((n) => only.includes(n))) {
      const t0 = Date.now();
      console.log(`\n## ${name}`);
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(join(REPO, 'node_modules/.bin/tsx'), [join(REPO, 'bench', `${name}.ts`), ...passOn, '--temporal', t.address], {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, PATH: `${join(REPO, '.venv/bin')}:${process.env.PATH}` },
        });
        let buffered = '';
        child.stdout.on('data', (b: Buffer) => {
          process.stdout.write(b);
          buffered += b.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          summary.push(...lines.filter((l) => /target/.test(l)));
        });
        child.once('close', resolve);
      });
      console.log(`## ${name}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      if (code !== 0) failed++;
    }
  } finally {
    await t.close();
  }
  console.log('\n## summary');
  for (const l of summary) console.log(l);
  if (failed) process.exit(1);
}

runMain(main);
