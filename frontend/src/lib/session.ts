/** Who is logged in, and whether the session just expired (a 401 from any call). Tiny store
 * read with `useSyncExternalStore`; no library needed for two booleans. */
import { useSyncExternalStore } from 'react';
import { clearDrafts } from './draft';

export interface SessionState {
  /** null = not known yet (the first /auth/me is in flight). */
  username: string | null;
  checked: boolean;
  /** A call answered 401 while logged in: show the login dialog over the page. */
  expired: boolean;
}

let state: SessionState = { username: null, checked: false, expired: false };
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

export const session = {
  get: () => state,
  subscribe(listener: () => void) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  loggedIn(username: string) {
    state = { username, checked: true, expired: false };
    emit();
  },
  /** The user logged out (or revoked this session): their drafts go too. */
  loggedOut() {
    if (state.username) clearDrafts();
    state = { username: null, checked: true, expired: false };
    emit();
  },
  expired() {
    if (state.username && !state.expired) {
      state = { ...state, expired: true };
      emit();
    } else if (!state.checked) {
      state = { username: null, checked: true, expired: false };
      emit();
    }
  },
};

export function useSession(): SessionState {
  return useSyncExternalStore(session.subscribe, session.get);
}
