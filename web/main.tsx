/** @module Entry of the web UI: the hash router (`#/`, `#/repo/:id`, `#/deployment/:id`), header and SSE banner. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { DeploymentPage } from './deployment.tsx';
import { connect, onConnection, type Connection } from './live.ts';
import { Overview } from './overview.tsx';
import { RepoPage } from './repo.tsx';
import { startStore } from './store.ts';

type Route = { page: 'overview' } | { page: 'repo'; id: number } | { page: 'deployment'; id: number };

function parse(hash: string): Route {
  const m = /^#\/(repo|deployment)\/(\d+)/.exec(hash);
  if (m) return { page: m[1] as 'repo' | 'deployment', id: Number(m[2]) };
  return { page: 'overview' };
}

function Banner() {
  const [c, setC] = useState<Connection>('connecting');
  useEffect(() => onConnection(setC), []);
  useEffect(() => {
    if (c !== 'recovered') return;
    const t = setTimeout(() => setC('live'), 5000);
    return () => clearTimeout(t);
  }, [c]);
  return (
    <div class="banner-slot" aria-live="assertive">
      {c === 'lost' ? (
        <p class="banner lost">Live updates lost: reconnecting… What you see may be out of date.</p>
      ) : c === 'recovered' ? (
        <p class="banner recovered">Live updates reconnected; data refreshed.</p>
      ) : null}
    </div>
  );
}

function App() {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => {
      setRoute(parse(location.hash));
      window.scrollTo(0, 0);
      document.getElementById('main')?.focus({ preventScroll: true });
    };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    const title =
      route.page === 'overview'
        ? 'Shiparr'
        : route.page === 'repo'
          ? `Repository ${route.id} · Shiparr`
          : `Deployment #${route.id} · Shiparr`;
    document.title = title;
  }, [route]);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header>
        <nav aria-label="Main">
          <a href="#/" class="brand">
            Shiparr
          </a>
        </nav>
      </header>
      <Banner />
      <main id="main" tabIndex={-1}>
        {route.page === 'repo' ? (
          <RepoPage key={route.id} id={route.id} />
        ) : route.page === 'deployment' ? (
          <DeploymentPage key={route.id} id={route.id} />
        ) : (
          <Overview />
        )}
      </main>
    </>
  );
}

connect();
startStore();
const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
