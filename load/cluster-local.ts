// `npm run cluster:local`: the multi-instance topology on this machine, until Ctrl-C.
// redis-server (sessions), three origins with REDIS_URL, HAProxy in front (health checks on
// /readyz), Prometheus scraping the three as job="astro-origin". Needs Debian's redis-server,
// haproxy and prometheus (scripts/install-test-deps.sh) and a build (npm run build).
// LOAD_INSTANCES=n changes the count; LOAD_ROLLING_RESTART=1 restarts each instance in turn
// under load once they are up and prints what was lost.
import { PURGE_TOKEN, rollingRestart, startTopology } from './lib/topology.ts';

const instances = Number(process.env.LOAD_INSTANCES ?? 3);
const topology = await startTopology({ instances, prometheus: true, scrapeInterval: '5s' });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping (by pid):', JSON.stringify(topology.pids()));
  await topology.stop();
  process.exit(0);
};
// Registered after spawn-origin's own handlers, so Ctrl-C also stops redis, HAProxy and
// Prometheus; whatever is still running when the process exits gets SIGKILL (lib/topology.ts).
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

console.log(`site (through HAProxy)  ${topology.url}/`);
console.log(`HAProxy stats           ${topology.statsUrl}`);
for (const i of topology.instances)
  console.log(`${i.name.padEnd(24)}${i.url}/  metrics ${i.server.metricsUrl ?? '(off)'}`);
console.log(`Redis                   ${topology.redisUrl}`);
console.log(
  `cache purge             POST /cache/purge on any instance's metrics port, Authorization: Bearer ${PURGE_TOKEN}`,
);
console.log(`Prometheus              ${topology.prometheusUrl}/targets`);
console.log('pids                   ', JSON.stringify(topology.pids()));
if (process.env.LOAD_ROLLING_RESTART === '1') {
  const result = await rollingRestart(topology);
  console.log('rolling restart under load:', JSON.stringify(result));
}
console.log('Ctrl-C stops everything.');
