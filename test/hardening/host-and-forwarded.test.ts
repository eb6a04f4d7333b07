// Host and X-Forwarded-* headers: a malformed Host is a 400 (RFC 9110 §7.2); forwarded headers
// are trusted only when the site configures security.allowedDomains, and then only when they
// match it (Astro's own rule, applied by the bridge through Astro's createRequest).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadBuild } from '../../src/astro/load-build.ts';
import type { RunningOrigin } from '../../src/standalone.ts';
import { DEMO_BUILD, startTestOrigin } from '../helpers/origin.ts';
import { assertServing, rawRequest } from '../helpers/raw-http.ts';

let origin: RunningOrigin;
before(async () => {
  origin = await startTestOrigin();
});
after(() => origin.close());

const alive = () => origin.app.server.listening;

/** POST /api/echo with raw header lines; resolves with the status and the clientAddress Astro saw. */
async function echo(
  url: string,
  headerLines: string,
): Promise<{ status: number; clientAddress?: string; body: string }> {
  const body = '{}';
  const res = await rawRequest(
    url,
    `POST /api/echo HTTP/1.1\r\n${headerLines}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  const json = res.status === 201 ? (JSON.parse(res.body) as { clientAddress: string }) : undefined;
  return { status: res.status, clientAddress: json?.clientAddress, body: res.body };
}

describe('Host', () => {
  for (const host of ['ex ample.com', '[::1', 'a/b?c#d@e', '%00', 'evil.example:99999999', 'a.example, b.example']) {
    test(`Host: ${JSON.stringify(host)} → 400`, async () => {
      const res = await rawRequest(origin.url, `GET /docs/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 400);
      assert.match(JSON.parse(res.body).message, /Host header/);
      await assertServing(origin.url, { alive });
    });
  }

  test('two Host headers → 400 (Node alone would keep the first and drop the second)', async () => {
    const res = await rawRequest(
      origin.url,
      `GET /docs/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 400);
    await assertServing(origin.url, { alive });
  });

  test('no Host on HTTP/1.1 → 400 with a message; HTTP/1.0 without Host is served', async () => {
    const res = await rawRequest(origin.url, `GET /docs/ HTTP/1.1\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).message, /need a Host header/);
    assert.equal((await rawRequest(origin.url, `GET /docs/ HTTP/1.0\r\n\r\n`)).status, 200);
    await assertServing(origin.url, { alive });
  });

  test('valid forms are served: name, name:port, IPv4, [IPv6]:port, empty', async () => {
    for (const host of ['www.example.com', 'www.example.com:8080', '10.0.0.1', '[2001:db8::1]:443', '']) {
      const res = await rawRequest(origin.url, `GET /docs/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200, `Host: ${host}`);
    }
  });
});

describe('X-Forwarded-* without security.allowedDomains (the demo site)', () => {
  test('well-formed forwarded headers are ignored: clientAddress is the socket peer', async () => {
    const res = await echo(
      origin.url,
      'Host: localhost\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: cdn.example.com\r\nX-Forwarded-Proto: https\r\n',
    );
    assert.equal(res.status, 201);
    assert.match(res.clientAddress ?? '', /127\.0\.0\.1$/);
  });

  test('malformed forwarded headers are ignored too, and do not break the request', async () => {
    const res = await echo(
      origin.url,
      'Host: localhost\r\nX-Forwarded-For: not-an-ip, <script>\r\nX-Forwarded-Host: evil.example/../x\r\nX-Forwarded-Proto: javascript\r\nX-Forwarded-Port: abc\r\n',
    );
    assert.equal(res.status, 201);
    assert.match(res.clientAddress ?? '', /127\.0\.0\.1$/);
    await assertServing(origin.url, { alive });
  });
});

describe('X-Forwarded-* with security.allowedDomains configured', () => {
  let trusting: RunningOrigin;
  before(async () => {
    // The same build with allowedDomains set, as `security: { allowedDomains: [...] }` in
    // astro.config would: the loaded App is shared by every origin of this test process.
    const build = await loadBuild(DEMO_BUILD);
    await origin.close();
    build.app.manifest.allowedDomains = [{ hostname: 'cdn.example.com', protocol: 'https' }];
    trusting = await startTestOrigin();
  });
  after(() => trusting.close());

  test('matching X-Forwarded-Host/Proto: X-Forwarded-For is trusted', async () => {
    const res = await echo(
      trusting.url,
      'Host: localhost\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\nX-Forwarded-Host: cdn.example.com\r\nX-Forwarded-Proto: https\r\n',
    );
    assert.equal(res.status, 201);
    assert.equal(res.clientAddress, '203.0.113.9');
  });

  for (const [name, headers] of [
    ['another host', 'X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n'],
    ['a host with a path', 'X-Forwarded-Host: cdn.example.com/../evil\r\nX-Forwarded-Proto: https\r\n'],
    ['a host with a backslash', 'X-Forwarded-Host: cdn.example.com\\evil.example\r\nX-Forwarded-Proto: https\r\n'],
    ['a protocol not allowed', 'X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: javascript\r\n'],
  ] as const) {
    test(`${name}: not trusted, X-Forwarded-For ignored, request still served`, async () => {
      const res = await echo(trusting.url, `Host: localhost\r\nX-Forwarded-For: 203.0.113.9\r\n${headers}`);
      assert.equal(res.status, 201, res.body);
      assert.match(res.clientAddress ?? '', /127\.0\.0\.1$/);
      await assertServing(trusting.url);
    });
  }
});
