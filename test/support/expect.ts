import { expect } from 'vitest';

/** A request id the gateway made itself (UUID v4). */
export const UUID_V4 =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** An answer as read off the wire (a RawAnswer, or supertest's status, headers and text). */
export interface WireAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Asserts the gateway's JSON error: `status` on the answer and in the body,
 * the request id in body and header (a well-formed one). With `message`, the
 * body's message matches it. With `strict`, also: X-Content-Type-Options:
 * nosniff, exactly the four fields of the shape, and a message that is short
 * and gives nothing away (no stack trace, internal address or line break).
 */
export function expectGatewayError(
  answer: WireAnswer,
  status: number,
  {
    message,
    strict = false,
  }: { message?: string | RegExp; strict?: boolean } = {},
): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  if (strict) expect(answer.headers['x-content-type-options']).toBe('nosniff');
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  if (strict)
    expect(Object.keys(body).sort()).toEqual([
      'error',
      'message',
      'request_id',
      'statusCode',
    ]);
  expect(body.statusCode).toBe(status);
  expect(body.request_id).toBe(answer.headers['x-request-id']);
  expect(body.request_id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  if (message !== undefined) expect(body.message).toMatch(message);
  if (strict) {
    // Never a stack trace, an internal address or a long echo.
    expect(String(body.message)).not.toMatch(/127\.0\.0\.1|\n|\bat \S+:\d+/);
    expect(String(body.message).length).toBeLessThanOrEqual(200);
  }
}
