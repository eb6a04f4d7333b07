import { Gauge, type Registry } from 'prom-client';
import { type RenderEvent, renderChannel } from '../astro/bridge.ts';
import type { RenderTurns } from '../astro/render-turns.ts';
import { HotHistogram } from './histogram.ts';

/** astro_render_duration_seconds, fed by the bridge's diagnostics channel. */
export function registerRenderMetrics(registry: Registry): () => void {
  const histogram = new HotHistogram({
    name: 'astro_render_duration_seconds',
    help: 'Time from the start of app.render() until the response body was complete, by Astro route pattern and renderer.',
    labelNames: ['route', 'renderer'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const onRender = (message: unknown) => {
    const { route, renderer, seconds } = message as RenderEvent;
    histogram.observe(seconds, route, renderer);
  };
  renderChannel.subscribe(onRender);
  return () => renderChannel.unsubscribe(onRender);
}

/** origin_renders_waiting, read at scrape time. */
export function registerRenderTurnMetrics(registry: Registry, turns: RenderTurns): void {
  new Gauge({
    name: 'origin_renders_waiting',
    help: 'Renders waiting for an event-loop turn with room (RENDER_SLICE_MS): the backlog of a saturated process.',
    registers: [registry],
    collect() {
      this.set(turns.waiting());
    },
  });
}
