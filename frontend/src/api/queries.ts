/** TanStack Query hooks over the generated client; query keys: ['instances'], ['instance', id],
 * ['instance-events', id], ['configs', id], ['hosts'], ['host', id], ['jobs'], ['job', id]. */
import { useQuery } from '@tanstack/react-query';
import { api, call } from './client';
import type { Host, Instance, Job, JobDetail } from './types';

/** The whole fleet, 1,000 rows a page. */
export async function fetchAllInstances(): Promise<Instance[]> {
  const rows: Instance[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await call(api.GET('/api/v1/instances', { params: { query: { limit: 1000, offset } } }));
    rows.push(...page.items);
    if (rows.length >= page.total || page.items.length === 0) return rows;
  }
}

export const useInstances = () => useQuery({ queryKey: ['instances'], queryFn: fetchAllInstances, refetchInterval: 30_000 });

export const useInstance = (id: string) =>
  useQuery({ queryKey: ['instance', id], queryFn: () => call(api.GET('/api/v1/instances/{instance_id}', { params: { path: { instance_id: id } } })), refetchInterval: 10_000 });

export const useHosts = () =>
  useQuery({ queryKey: ['hosts'], queryFn: () => call(api.GET('/api/v1/hosts')) as Promise<Host[]>, refetchInterval: 5_000 });

export const useHost = (id: string) =>
  useQuery({ queryKey: ['host', id], queryFn: () => call(api.GET('/api/v1/hosts/{host_id}', { params: { path: { host_id: id } } })), refetchInterval: 5_000 });

export const useJobs = () =>
  useQuery({
    queryKey: ['jobs'],
    queryFn: async () => (await call(api.GET('/api/v1/jobs', { params: { query: { limit: 200 } } }))).items as Job[],
    refetchInterval: 5_000,
  });

export const useJob = (id: string) =>
  useQuery({ queryKey: ['job', id], queryFn: () => call(api.GET('/api/v1/jobs/{job_id}', { params: { path: { job_id: id } } })) as Promise<JobDetail>, refetchInterval: 3_000 });

export function hostNames(hosts: Host[] | undefined): Record<string, string> {
  return Object.fromEntries((hosts ?? []).map((h) => [h.id, h.name]));
}
