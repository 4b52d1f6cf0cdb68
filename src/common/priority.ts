/**
 * A request's class under overload (TENANTS_FILE gives each tenant one):
 * admission serves `critical` before `standard` before `sheddable`. Clients
 * never choose their own.
 */
export const PRIORITIES = ['critical', 'standard', 'sheddable'] as const;

export type Priority = (typeof PRIORITIES)[number];

/** 0 for critical, 1 for standard, 2 for sheddable: lower is served first. */
export function rankOf(priority: Priority): number {
  return priority === 'critical' ? 0 : priority === 'standard' ? 1 : 2;
}
