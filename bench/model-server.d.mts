export interface ModelServerStats {
  received: number;
  served: number;
  wasted: number;
  outstanding: number;
  maxOutstanding: number;
  maxActive: number;
  order: string[];
}

export interface ModelServer {
  url: string;
  port: number;
  readonly stats: ModelServerStats;
  resetStats(): void;
  close(): Promise<void>;
}

export function startModelServer(options?: {
  slots?: number;
  serviceMs?: number;
  port?: number;
}): Promise<ModelServer>;
