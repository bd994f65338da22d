#!/usr/bin/env node
// The `shardmind` executable: registers tsx in this process, then runs the TypeScript entry point, so signals
// (Ctrl-C) reach the command directly instead of a wrapper.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
