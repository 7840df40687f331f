import '@mantine/core/styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { MantineProvider, createTheme, localStorageColorSchemeManager, type CSSVariablesResolver } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { App } from './App';

// WCAG AA (4.5:1) for text on filled colours: indigo.6 under white is 4.3:1, so the light theme
// uses shade 7; autoContrast puts dark text on light fills (a white "online" on green.6 was 2.4:1).
const theme = createTheme({ primaryColor: 'indigo', primaryShade: { light: 7, dark: 8 }, autoContrast: true, defaultRadius: 'sm' });
// Mantine's "dimmed" text is under WCAG AA's 4.5:1 in both themes (gray.6 on white 3.3:1, dark.2 on
// dark.7 4.0:1, measured by tests/e2e/test_panel_settings.py): use one shade stronger in each.
const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: {},
  light: { '--mantine-color-dimmed': 'var(--mantine-color-gray-7)' },
  dark: { '--mantine-color-dimmed': 'var(--mantine-color-dark-1)' },
});
const colorSchemeManager = localStorageColorSchemeManager({ key: 'botfleet-color-scheme' });
const queryClient = new QueryClient({
  defaultOptions: {
    queries: { retry: (n, e) => n < 2 && (e as { status?: number }).status !== 401 && (e as { status?: number }).status !== 404, staleTime: 2_000 },
  },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto" colorSchemeManager={colorSchemeManager} cssVariablesResolver={cssVariablesResolver}>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
