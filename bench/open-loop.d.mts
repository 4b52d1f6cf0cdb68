export interface LoadAnswer {
  status: number;
  ms: number;
  overloaded?: boolean;
  retryAfter?: string;
}

export interface LoadSummary {
  sent: number;
  served: number;
  goodputRps: number;
  p50ServedMs: number;
  p99ServedMs: number;
  shed: number;
  p99ShedMs: number;
  shedWithRetryAfter: number;
  timeouts: number;
  other: number;
}

export function openLoop(options: {
  url: string;
  rps: number;
  durationMs: number;
  headers?: Record<string, string>;
  body?: string;
}): Promise<LoadAnswer[]>;

export function percentile(values: number[], p: number): number;

export function summarize(
  results: LoadAnswer[],
  options: { durationMs: number; deadlineMs: number },
): LoadSummary;

export function gatewayShedP99(logText: string): number;

export function gatewayShedMs(logText: string): number[];
