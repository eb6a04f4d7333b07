// The docs sidebar. One entry per MDX page under demo/pages/docs/, in reading order.
// Each page's frontmatter repeats its `section` and `order`; keep the two in step
// (a page missing here would have no way in from the sidebar).

export interface NavPage {
  href: string;
  title: string;
}

export interface NavSection {
  section: string;
  pages: NavPage[];
}

export const NAV: NavSection[] = [
  {
    section: 'Getting started',
    pages: [
      { href: '/docs/', title: 'Introduction' },
      { href: '/docs/getting-started/installation', title: 'Installation' },
      { href: '/docs/getting-started/quick-start', title: 'Quick start' },
      { href: '/docs/getting-started/project-structure', title: 'Project structure' },
      { href: '/docs/getting-started/configuration', title: 'Configuration reference' },
    ],
  },
  {
    section: 'Architecture',
    pages: [
      { href: '/docs/architecture/request-lifecycle', title: 'Request lifecycle' },
      { href: '/docs/architecture/rendering-modes', title: 'Queue and recursive rendering' },
      { href: '/docs/architecture/streaming', title: 'Streaming and buffering' },
      { href: '/docs/architecture/static-assets', title: 'Static assets and /_astro' },
      { href: '/docs/interactive-islands', title: 'Interactive islands' },
    ],
  },
  {
    section: 'Caching',
    pages: [
      { href: '/docs/caching/cache-control', title: 'Cache-Control in depth' },
      { href: '/docs/caching/cache-keys', title: 'Cache keys and Vary' },
      { href: '/docs/caching/stale-while-revalidate', title: 'Stale-while-revalidate' },
      { href: '/docs/caching/conditional-requests', title: 'ETags and conditional requests' },
      { href: '/docs/caching/purging', title: 'Purging and invalidation' },
      { href: '/docs/caching/personalization', title: 'Cookies and personalized pages' },
    ],
  },
  {
    section: 'Headers',
    pages: [
      { href: '/docs/headers/security-headers', title: 'Security headers' },
      { href: '/docs/headers/forwarded-headers', title: 'Client IPs and X-Forwarded-*' },
      { href: '/docs/headers/compression', title: 'Compression' },
      { href: '/docs/headers/cookies', title: 'Set-Cookie behind a CDN' },
    ],
  },
  {
    section: 'Performance',
    pages: [
      { href: '/docs/performance/node-pool', title: 'The queue node pool' },
      { href: '/docs/performance/keep-alive', title: 'Keep-alive and timeouts' },
      { href: '/docs/performance/backpressure', title: 'Backpressure and load shedding' },
      { href: '/docs/performance/memory', title: 'Memory and garbage collection' },
      { href: '/docs/performance/workers', title: 'Scaling across cores' },
    ],
  },
  {
    section: 'Observability',
    pages: [
      { href: '/docs/observability/metrics', title: 'Prometheus metrics' },
      { href: '/docs/observability/histograms', title: 'Latency histograms and SLOs' },
      { href: '/docs/observability/dashboards', title: 'Grafana dashboards' },
      { href: '/docs/observability/logging', title: 'Structured logging' },
      { href: '/docs/observability/health-checks', title: 'Health checks' },
    ],
  },
  {
    section: 'Load testing',
    pages: [
      { href: '/docs/load-testing/autocannon', title: 'Load testing with autocannon' },
      { href: '/docs/load-testing/scenarios', title: 'Designing scenarios' },
      { href: '/docs/load-testing/reading-results', title: 'Reading the results' },
      { href: '/docs/load-testing/concurrency-safety', title: 'Concurrency-safety probes' },
    ],
  },
  {
    section: 'Operations',
    pages: [
      { href: '/docs/operations/deployment', title: 'Deploying behind a CDN' },
      { href: '/docs/operations/graceful-shutdown', title: 'Graceful shutdown' },
      { href: '/docs/operations/error-pages', title: 'Error pages and failures' },
      { href: '/docs/operations/troubleshooting', title: 'Troubleshooting' },
    ],
  },
];

/** Every docs page in reading order. */
export const NAV_PAGES: (NavPage & { section: string })[] = NAV.flatMap(({ section, pages }) =>
  pages.map((page) => ({ ...page, section })),
);

/** The first docs page, where /api/redirect sends visitors. */
export const FIRST_DOCS_PAGE = NAV_PAGES[0]!.href;

/** Normalises a pathname for comparison with nav hrefs ("/docs" and "/docs/" are the same page). */
export function samePage(pathname: string, href: string): boolean {
  const strip = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);
  return strip(pathname) === strip(href);
}
