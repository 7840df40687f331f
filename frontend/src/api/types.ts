/** Short names for the generated schema types. */
import type { components } from './schema';

type S = components['schemas'];
export type Instance = S['InstanceOut'];
export type InstanceCreate = S['InstanceCreate'];
export type Host = S['HostOut'];
export type Job = S['JobOut'];
export type JobDetail = S['JobDetail'];
export type JobCreate = S['JobCreate'];
export type FleetEvent = S['EventOut'];
export type ConfigVersion = S['ConfigOut'];
