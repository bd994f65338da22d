/** Runs the ShardStore contract against the LMDB store. */
import { openShardStore } from '../../shards/index.ts';
import { shardStoreContract } from './contract.ts';

shardStoreContract('lmdb', (options) => openShardStore(options));
