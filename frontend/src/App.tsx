/** The shell: login (or the login dialog when a session expires mid-work, so open forms keep
 * what was typed), navigation, theme, the live event stream, and the lazily loaded pages. */
import { lazy, Suspense, useEffect, useState, type FormEvent } from 'react';
import { HashRouter, NavLink as RouterLink, Route, Routes, useLocation } from 'react-router-dom';
import {
  ActionIcon, AppShell, Badge, Box, Burger, Button, Center, Group, Loader, Modal, NavLink, Paper, PasswordInput,
  Stack, Text, TextInput, Title, Tooltip, useComputedColorScheme, useMantineColorScheme,
} from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useQueryClient } from '@tanstack/react-query';
import { api, call } from './api/client';
import { session, useSession } from './lib/session';
import { useFleetEvents, useLiveConnected } from './lib/live';
import { ProblemAlert } from './components/ProblemAlert';

const Overview = lazy(() => import('./pages/Overview'));
const Instances = lazy(() => import('./pages/Instances'));
const InstanceNew = lazy(() => import('./pages/InstanceNew'));
const InstancePage = lazy(() => import('./pages/InstancePage'));
const Jobs = lazy(() => import('./pages/Jobs'));
const JobPage = lazy(() => import('./pages/JobPage'));
const Hosts = lazy(() => import('./pages/Hosts'));
const HostPage = lazy(() => import('./pages/HostPage'));
const Settings = lazy(() => import('./pages/Settings'));

const NAV = [
  { to: '/', label: 'Overview' },
  { to: '/instances', label: 'Instances' },
  { to: '/jobs', label: 'Jobs' },
  { to: '/hosts', label: 'Hosts' },
  { to: '/settings', label: 'Settings' },
];

function LoginForm({ onDone, fixedUser }: { onDone?: () => void; fixedUser?: string | null }) {
  const [username, setUsername] = useState(fixedUser ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await call(api.POST('/api/v1/auth/login', { body: { username, password } }));
      session.loggedIn(out.username);
      onDone?.();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-label="Log in">
      <Stack>
        <TextInput label="User" name="username" autoComplete="username" required autoFocus={!fixedUser}
          value={username} onChange={(e) => setUsername(e.currentTarget.value)} />
        <PasswordInput label="Password" name="password" autoComplete="current-password" required autoFocus={!!fixedUser}
          value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
        <ProblemAlert error={error} />
        <Button type="submit" loading={busy}>Log in</Button>
      </Stack>
    </form>
  );
}

function LoginPage() {
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w={380}>
        <Title order={2} mb="xs">botfleet</Title>
        <Text c="dimmed" size="sm" mb="md">
          Log in with the admin user that <code>botfleet up</code> printed (also in var/admin-credentials.txt).
        </Text>
        <LoginForm />
      </Paper>
    </Center>
  );
}

function ThemeToggle() {
  const { setColorScheme } = useMantineColorScheme();
  const scheme = useComputedColorScheme('light');
  const next = scheme === 'dark' ? 'light' : 'dark';
  return (
    <Tooltip label={`Switch to ${next} theme`}>
      <ActionIcon variant="default" size="lg" aria-label={`Switch to ${next} theme`} onClick={() => setColorScheme(next)}>
        {scheme === 'dark' ? '☀' : '☾'}
      </ActionIcon>
    </Tooltip>
  );
}

/** While the live stream is down, ask the api who is logged in: at once when the stream
 * drops (a revoked session's stream is ended by the api, so this is when the user should hear
 * of it), then every `everyMs`. A stream refused for a revoked or expired session ends for good
 * (EventSource does not retry a 401), so without this the panel would sit stale until the
 * user's next action. The 401 answer opens the login dialog through the client's middleware; a
 * network error (the api restarting) is left to the stream's own reconnection. */
function useExpiryProbe(live: boolean, expired: boolean, everyMs = 5000): void {
  useEffect(() => {
    if (live || expired) return;
    const probe = () => { call(api.GET('/api/v1/auth/me')).catch(() => undefined); };
    probe();
    const timer = setInterval(probe, everyMs);
    return () => clearInterval(timer);
  }, [live, expired, everyMs]);
}

function Shell({ username }: { username: string }) {
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  const live = useLiveConnected();
  const qc = useQueryClient();
  const { expired } = useSession();
  useExpiryProbe(live, expired);
  useEffect(close, [location.pathname, close]);
  const logout = async () => {
    try { await call(api.POST('/api/v1/auth/logout')); } catch { /* the session may be gone already */ }
    qc.clear();
    session.loggedOut();
  };
  return (
    <AppShell header={{ height: 52 }} navbar={{ width: 200, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="sm">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Menu" />
            <Title order={4}>botfleet</Title>
            <Tooltip label={live ? 'Live updates connected' : 'Live updates reconnecting'}>
              <Badge color={live ? 'green' : 'gray'} variant="dot" data-testid="live">{live ? 'live' : 'offline'}</Badge>
            </Tooltip>
          </Group>
          <Group gap="sm">
            <Text size="sm" c="dimmed">{username}</Text>
            <ThemeToggle />
            <Button variant="default" size="xs" onClick={logout}>Log out</Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label="Main">
        {NAV.map((n) => (
          <NavLink key={n.to} component={RouterLink} to={n.to} label={n.label}
            active={n.to === '/' ? location.pathname === '/' : location.pathname.startsWith(n.to)} />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Center p="xl"><Loader /></Center>}>
          <Routes>
            <Route path="/" element={<Overview />} />
            <Route path="/instances" element={<Instances />} />
            <Route path="/instances/new" element={<InstanceNew />} />
            <Route path="/instances/:id" element={<InstancePage />} />
            <Route path="/jobs" element={<Jobs />} />
            <Route path="/jobs/:id" element={<JobPage />} />
            <Route path="/hosts" element={<Hosts />} />
            <Route path="/hosts/:id" element={<HostPage />} />
            <Route path="/settings" element={<Settings />} />
            <Route path="*" element={<Text>No such page. <RouterLink to="/">Go to the overview</RouterLink>.</Text>} />
          </Routes>
        </Suspense>
      </AppShell.Main>
      <Modal opened={expired} onClose={() => undefined} withCloseButton={false} closeOnEscape={false} closeOnClickOutside={false}
        title="Your session expired" centered>
        <Text size="sm" mb="sm">Log in again to continue; what you typed on this page is kept.</Text>
        <LoginForm fixedUser={username} onDone={() => qc.invalidateQueries()} />
      </Modal>
    </AppShell>
  );
}

export function App() {
  const s = useSession();
  const qc = useQueryClient();
  useEffect(() => {
    call(api.GET('/api/v1/auth/me')).then((me) => session.loggedIn(me.username), () => session.loggedOut());
  }, []);
  useFleetEvents(qc, !!s.username && !s.expired);
  if (!s.checked) return <Center mih="100vh"><Loader /></Center>;
  if (!s.username) return <LoginPage />;
  return (
    <HashRouter>
      <Box>
        <Shell username={s.username} />
      </Box>
    </HashRouter>
  );
}
