/** Form state kept in sessionStorage, so a reload (or a lost session) never loses what the
 * user typed. Cleared by calling the returned `clear`, and all drafts by `clearDrafts` when the
 * user logs out (the next person at this browser tab must not find them). Fields named like
 * secrets (SECRET_FIELDS: an SSH private key, a password, an exchange secret) are never written
 * to storage: they live in React state only, which the session-expired dialog keeps, but a
 * reload empties them. */
import { useCallback, useEffect, useState } from 'react';

const PREFIX = 'botfleet-draft:';
export const SECRET_FIELDS = new Set(['password', 'current_password', 'passphrase', 'secret', 'api_secret', 'key',
  'api_key', 'ssh_key', 'private_key', 'token']);

/** What of a draft may be written to storage: everything but the secret fields. */
export function storable<T>(value: T): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !SECRET_FIELDS.has(k))) as T;
}

/** Forget every draft of this tab (on logout). */
export function clearDrafts(): void {
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
  } catch { /* storage off */ }
}

export function useDraft<T>(key: string, initial: T): [T, (v: T | ((old: T) => T)) => void, () => void] {
  const storageKey = `${PREFIX}${key}`;
  const [value, setValue] = useState<T>(() => {
    try {
      const saved = sessionStorage.getItem(storageKey);
      return saved ? { ...initial, ...JSON.parse(saved) } : initial;
    } catch {
      return initial;
    }
  });
  useEffect(() => {
    try { sessionStorage.setItem(storageKey, JSON.stringify(storable(value))); } catch { /* storage full or off */ }
  }, [storageKey, value]);
  const clear = useCallback(() => {
    sessionStorage.removeItem(storageKey);
    setValue(initial);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [storageKey]);
  return [value, setValue, clear];
}
