/** `npm run demo`: runs the demo in this process and exits with its code. */
import { runDemo } from './run.ts';

process.exitCode = await runDemo();
