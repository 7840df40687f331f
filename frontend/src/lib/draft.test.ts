import { describe, expect, it } from 'vitest';
import { clearDrafts, storable } from './draft';
import { session } from './session';

describe('drafts', () => {
  it('never store secrets such as an SSH private key or a password', () => {
    const draft = { name: 'vps-1', address: '10.0.0.5', ssh_key: '-----BEGIN OPENSSH PRIVATE KEY-----', password: 'hunter22' };
    expect(storable(draft)).toEqual({ name: 'vps-1', address: '10.0.0.5' });
  });

  it('are forgotten when the user logs out, not when the session merely expires', () => {
    sessionStorage.setItem('botfleet-draft:instance-new', '{"name":"typed"}');
    sessionStorage.setItem('unrelated', 'kept');
    session.loggedIn('alice');
    session.expired();
    expect(sessionStorage.getItem('botfleet-draft:instance-new')).toBe('{"name":"typed"}');
    session.loggedIn('alice');
    session.loggedOut();
    expect(sessionStorage.getItem('botfleet-draft:instance-new')).toBeNull();
    expect(sessionStorage.getItem('unrelated')).toBe('kept');
    clearDrafts();
  });
});
