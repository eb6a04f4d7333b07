import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Astro fetches prerendered 404/500 pages over HTTP by default; an origin answers from the
 * client dir instead, read once at start-up (no fetch loop back into ourselves, no disk I/O
 * on the error path).
 */
export async function createErrorPageFetch(clientDir: string): Promise<(url: string) => Promise<Response>> {
  const pages = new Map<string, Buffer<ArrayBuffer>>();
  for (const status of [404, 500]) {
    for (const file of [`${status}.html`, `${status}/index.html`]) {
      const html = await readFile(path.join(clientDir, file)).catch(() => undefined);
      if (html) {
        pages.set(String(status), html as Buffer<ArrayBuffer>);
        break;
      }
    }
  }
  return async (url) => {
    const status = /\/(404|500)(?:\.html|\/index\.html|\/)?$/.exec(new URL(url).pathname)?.[1];
    const html = status ? pages.get(status) : undefined;
    return html
      ? new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8' } })
      : new Response(null, { status: 404 });
  };
}
