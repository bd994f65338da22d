/** The demo: three Minis, three agents, one checked story (`npm run demo`, `shardmind demo`). */
export type { Narrator } from './story.ts';
export { demoCommand, runDemo } from './run.ts';
export { tellStory, StoryError } from './story.ts';
export { Minis, MINIS } from './minis.ts';
