/** `orbit diagnose RUN` and `orbit report RUN`: a run's evidence read after the fact. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('diagnose')
    .description('which layer of a run failed (runtime, precheck, task, progress, gpu), with the evidence; exit 0 healthy, 1 not')
    .argument('<run>', 'a run id or a bundle folder')
    .action(
      act(ctx, async (run: string) => {
        const { runDiagnose } = await import('../diagnose');
        const { temporalTarget } = await import('../../config');
        return runDiagnose(run, temporalTarget(), ctx.io.out);
      }),
    );

  program
    .command('report')
    .description('write <bundle>/runtime/report.html: timeline, progress, GPU charts, provenance and the diagnosis, viewable offline')
    .argument('<run>', 'a run id or a bundle folder')
    .action(
      act(ctx, async (run: string) => {
        const { runReport } = await import('../report');
        const { temporalTarget } = await import('../../config');
        return runReport(run, temporalTarget(), ctx.io.out);
      }),
    );
};
