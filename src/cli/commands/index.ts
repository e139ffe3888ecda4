/** Every command of `orbit`, in the order `orbit --help` lists them. */
import type { Register } from './common';
import { register as submit } from './submit';
import { register as status } from './status';
import { register as logs } from './logs';
import { register as cancel } from './cancel';
import { register as inspect } from './inspect';
import { register as list } from './list';
import { register as sweep } from './sweep';
import { register as hosts } from './hosts';
import { register as pull } from './pull';
import { register as store } from './store';
import { register as tasks } from './tasks';
import { register as schema } from './schema';
import { register as up } from './up';
import { register as down } from './down';
import { register as worker } from './worker';
import { register as demo } from './demo';
import { register as init } from './init';
import { register as completion } from './completion';

export const COMMANDS: Register[] = [submit, status, logs, cancel, inspect, list, sweep, hosts, pull, store, tasks, schema, up, down, worker, demo, init, completion];
