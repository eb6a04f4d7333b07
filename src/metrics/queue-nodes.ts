import { Histogram, type Registry } from 'prom-client';
import { type QueueNodesEvent, queueNodesChannel } from '../astro/bridge.ts';

/**
 * Buckets for nodes per render: a page with a frontmatter layout acquires ~1 (its content is one
 * slot), a layout-less MDX page tens to thousands (the demo's docs pages 250-2 300).
 */
export const QUEUE_NODES_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000];

/**
 * astro_queue_nodes_per_render{route}: queue nodes each queue render acquired, by route pattern,
 * counted per render (exact under concurrency, see enableQueueNodeCounting). The origin counts
 * only while this subscribes. Returns the unsubscribe.
 */
export function registerQueueNodeMetrics(registry: Registry): () => void {
  const histogram = new Histogram({
    name: 'astro_queue_nodes_per_render',
    help: 'Queue nodes acquired by one render of a queue-rendered page (MDX), by Astro route pattern. Size POOL_SIZE from it.',
    labelNames: ['route'],
    buckets: QUEUE_NODES_BUCKETS,
    registers: [registry],
  });
  const onRender = (message: unknown) => {
    const { route, nodes } = message as QueueNodesEvent;
    histogram.observe({ route }, nodes);
  };
  queueNodesChannel.subscribe(onRender);
  return () => queueNodesChannel.unsubscribe(onRender);
}
