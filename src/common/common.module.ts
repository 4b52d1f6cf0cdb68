import { Global, Module } from '@nestjs/common';
import { ResponseClosedHook } from './response-closed.hook.js';

@Global()
@Module({
  providers: [ResponseClosedHook],
  exports: [ResponseClosedHook],
})
export class CommonModule {}
