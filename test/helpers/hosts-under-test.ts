/**
 * Hosts for host-level suites that run over every transport: a folder of this machine through the
 * local transport, and a real sshd on loopback through SSH. Both work roots are on this machine, so
 * a test may look at (or tamper with) the run folder directly.
 */
import { LocalTransport } from '../../src/hosts/local-transport';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh';
import type { Transport } from '../../src/hosts/transport';
import { sshOptions, startSshd } from './sshd';
import { tempDir } from './temp-dirs';

export interface HostUnderTest {
  host: ShellHost;
  transport: Transport;
  workRoot: string;
  close(): Promise<void>;
}

export async function localHostUnderTest(name = 'local'): Promise<HostUnderTest> {
  const work = await tempDir('orbit-work-');
  const transport = new LocalTransport();
  return { host: new ShellHost({ name, transport, workRoot: work.dir }), transport, workRoot: work.dir, close: work.cleanup };
}

export async function sshHostUnderTest(name: string): Promise<HostUnderTest> {
  const server = await startSshd({ name });
  const transport = new SshTransport(sshOptions(server));
  return {
    host: new ShellHost({ name, transport, workRoot: server.workRoot }),
    transport,
    workRoot: server.workRoot,
    close: async () => {
      await transport.close();
      await server.stop();
    },
  };
}
