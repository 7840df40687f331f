/** The typed api client (openapi-fetch over the generated `schema.ts`). Every call sends the
 * session cookie (same origin); failures throw `ApiError` with the api's problem details; a
 * 401 also tells the session store, which shows the login dialog over the current page so
 * nothing the user typed is lost. */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { ApiError, toProblem } from '../lib/problem';
import { session } from '../lib/session';

export type { paths, components } from './schema';

const onError: Middleware = {
  async onResponse({ response, request }) {
    if (response.ok) return undefined;
    const sessionExpired = response.status === 401 && !request.url.endsWith('/auth/login');
    if (sessionExpired) session.expired();
    let body: unknown = null;
    const text = await response.clone().text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    throw new ApiError(toProblem(response.status, body, response.statusText), { sessionExpired });
  },
};

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(onError);

/** Unwrap an openapi-fetch result (errors were already thrown by the middleware). */
export async function call<T>(promise: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await promise;
  if (error !== undefined || !response.ok) throw new ApiError(toProblem(response.status, error, response.statusText));
  return data as T;
}

/** GET a job artifact (JSON or text). */
export async function artifact(jobId: string, name: string): Promise<unknown> {
  const r = await fetch(artifactUrl(jobId, name), { credentials: 'same-origin' });
  const text = await r.text();
  if (!r.ok) {
    if (r.status === 401) session.expired();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* plain text */ }
    throw new ApiError(toProblem(r.status, body, r.statusText), { sessionExpired: r.status === 401 });
  }
  try { return JSON.parse(text); } catch { return text; }
}

export function artifactUrl(jobId: string, name: string): string {
  return `/api/v1/jobs/${encodeURIComponent(jobId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
}
