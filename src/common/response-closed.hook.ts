import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export type ClosedListener = (
  request: FastifyRequest,
  reply: FastifyReply,
) => void;

/**
 * Calls the access log and the request metrics when a response closes, from
 * one onRequest hook and one 'close' listener per request, not one of each
 * per feature. On the response's close, not Fastify's onResponse: that one
 * never fires for a client that left before the answer.
 */
@Injectable()
export class ResponseClosedHook implements OnModuleInit {
  private readonly listeners: ClosedListener[] = [];

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** For the modules' onModuleInit: called in the order added. */
  add(listener: ClosedListener): void {
    this.listeners.push(listener);
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    const listeners = this.listeners;
    fastify.addHook('onRequest', (request, reply, done) => {
      // `on`, not `once`: a response closes once, and once's wrapper is garbage.
      reply.raw.on('close', () => {
        for (const listener of listeners) listener(request, reply);
      });
      done();
    });
  }
}
