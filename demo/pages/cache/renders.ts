// GET /cache/renders: how many times this process rendered each cache test page (never cached).
import type { APIRoute } from 'astro';
import { json } from '../api/_json.ts';
import { renderCounts } from './_renders.ts';

export const GET: APIRoute = () => json({ pid: process.pid, ...renderCounts() });
