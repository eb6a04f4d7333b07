// Renders one page of a build many times, a few at once, in a process started with
// --trace-gc-nvp; the test reads V8's lines from stdout and sums what scavenges promoted.
// Usage: node --trace-gc-nvp test/helpers/promotion-probe.ts <buildDir> <path> <renders>
import { loadBuild } from '../../src/astro/load-build.ts';

const [buildDir = 'dist', pathname = '/', count = '2000'] = process.argv.slice(2);
const { app } = await loadBuild(buildDir);
const renders = Number(count);
const AT_ONCE = 10;
const renderOne = async () => {
  const response = await app.render(new Request(`http://localhost${pathname}`));
  if (response.status !== 200) throw new Error(`${pathname} answered ${response.status}`);
  await response.arrayBuffer();
};
// Warm-up: V8 compiles and the young generation grows to its working size first.
for (let i = 0; i < 500; i++) await renderOne();
console.log('probe: measuring');
for (let done = 0; done < renders; done += AT_ONCE) await Promise.all(Array.from({ length: AT_ONCE }, renderOne));
console.log('probe: done');
