/** RFC 9457 problem details as the api sends them (`key` = dotted path of the field at fault). */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail: string;
  key?: string;
  errors?: { key?: string; message?: string }[];
}

/** An api call that failed; `problem` is what the api said (or a stand-in for network errors).
 * `sessionExpired`: a 401 to a call made while logged in (not the login itself), which the
 * login dialog over the page answers, so it is not shown again where the user acted. */
export class ApiError extends Error {
  readonly problem: Problem;
  readonly sessionExpired: boolean;
  constructor(problem: Problem, { sessionExpired = false }: { sessionExpired?: boolean } = {}) {
    super(problem.detail || problem.title);
    this.problem = problem;
    this.sessionExpired = sessionExpired;
  }
  get status(): number {
    return this.problem.status;
  }
}

/** Build a Problem from any response body (problem+json, plain text, nothing). */
export function toProblem(status: number, body: unknown, statusText = ''): Problem {
  if (body && typeof body === 'object' && ('detail' in body || 'title' in body)) {
    const b = body as Partial<Problem>;
    return {
      type: b.type,
      title: String(b.title ?? statusText ?? 'Error'),
      status: Number(b.status ?? status),
      detail: String(b.detail ?? b.title ?? ''),
      key: b.key ?? undefined,
      errors: b.errors,
    };
  }
  const text = typeof body === 'string' && body.trim() ? body.trim().slice(0, 500) : '';
  return {
    title: statusText || `HTTP ${status}`,
    status,
    detail: text || (status === 0 ? 'The api did not answer: is botfleet running?' : `The api answered ${status}.`),
  };
}

/** Problem of any thrown value (ApiError, TypeError from fetch, ...). */
export function problemOf(error: unknown): Problem | null {
  if (!error) return null;
  if (error instanceof ApiError) return error.problem;
  if (error instanceof Error) return { title: 'Error', status: 0, detail: error.message };
  return { title: 'Error', status: 0, detail: String(error) };
}

/** Does the problem point at this field (exactly, or at something inside it)? */
export function problemAt(problem: Problem | null | undefined, key: string): string | undefined {
  if (!problem?.key) return undefined;
  return problem.key === key || problem.key.startsWith(key + '.') ? problem.detail : undefined;
}
