import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'gateway:public';

/** Open to everyone: no API key, no rate limit (probes, metrics scrapes). */
export const Public = () => SetMetadata(IS_PUBLIC, true);
