import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { routeLabel } from './route-label.ts';

/**
 * One log line per request instead of Fastify's two ("incoming request" + "request
 * completed"), carrying the route pattern so logs group the way metrics do. Fastify's error
 * logs are left as they are.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url,
      route: routeLabel(request),
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}
