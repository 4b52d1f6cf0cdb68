import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { AdmissionService } from './admission.service.js';
import { BackendPoolService } from './backend-pool.service.js';
import { BackendHealthIndicator } from './backend.indicator.js';
import { PredictController } from './predict.controller.js';
import { createNodeHttpAdapter } from './node-http.adapter.js';
import { ProxyService } from './proxy.service.js';

// Keep-alive to the backends: a new TCP handshake per request would cost more
// than the rest of the proxy path together.
const agentOptions = {
  keepAlive: true,
  keepAliveMsecs: 1000,
  maxFreeSockets: 256,
  scheduling: 'lifo',
} as const;

@Module({
  imports: [
    TerminusModule,
    HttpModule.registerAsync({
      useFactory: () => ({
        // A byte-for-byte proxy: the answer comes back as the raw stream,
        // whatever its status, never redirected, decompressed or converted.
        // Set once here so each request's config stays small for axios to merge.
        adapter: createNodeHttpAdapter({
          http: new HttpAgent(agentOptions),
          https: new HttpsAgent(agentOptions),
        }),
        responseType: 'stream',
        validateStatus: null,
        maxRedirects: 0,
        decompress: false,
        transformRequest: [(data: unknown) => data],
        transformResponse: [],
        proxy: false,
      }),
    }),
  ],
  controllers: [PredictController],
  providers: [
    ProxyService,
    BackendPoolService,
    AdmissionService,
    BackendHealthIndicator,
  ],
  exports: [BackendPoolService, BackendHealthIndicator],
})
export class ProxyModule {}
