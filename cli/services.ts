/**
 * What a host process runs next to its shard actors: the router (`sm.mem.*`, queue group `sm-router`), so every
 * Mini can answer agents and no router is a single point of failure. `host` and `up` both pass these to `Host`.
 */
import type { StartHostService } from '../actors/index.ts';
import { startRouter } from '../router/index.ts';

export const routerService: StartHostService = ({ nc, config, node, log }) =>
  startRouter(nc, config, { node, log: (line) => log(`[${node} router] ${line}`) });

export const HOST_SERVICES: readonly StartHostService[] = [routerService];
