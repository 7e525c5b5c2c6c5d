// hubwright console: the little script the pages use. Every page reads and
// works without it; it adds local times and live updates.
'use strict';

(function () {
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const absolute = new Intl.DateTimeFormat(undefined, {
    dateStyle: 'medium', timeStyle: 'short',
  });
  const units = [
    ['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
    ['hour', 3600], ['minute', 60], ['second', 1],
  ];

  function ago(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === 'second') {
        return relative.format(Math.round(seconds / size), unit);
      }
    }
    return '';
  }

  // Times arrive in UTC; show them in the viewer's zone, with "in 3 hours".
  function localTimes(root) {
    for (const el of root.querySelectorAll('time[datetime]')) {
      const date = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(date.getTime())) continue;
      el.title = date.toISOString();
      el.textContent = el.hasAttribute('data-relative')
        ? `${absolute.format(date)} (${ago(date)})`
        : absolute.format(date);
    }
  }

  // A region with data-live-events (a run's event stream on this console)
  // and data-live-fragment (its HTML) is redrawn on every event.
  function live(region) {
    const events = region.getAttribute('data-live-events');
    const fragment = region.getAttribute('data-live-fragment');
    if (!events || !fragment || !window.EventSource) return;
    let pending = false;
    async function redraw() {
      if (pending) return;
      pending = true;
      try {
        const answer = await fetch(fragment, { headers: { Accept: 'text/html' } });
        if (answer.ok) {
          region.innerHTML = await answer.text();
          localTimes(region);
          region.setAttribute('data-live-updated', String(Date.now()));
        }
      } finally {
        pending = false;
      }
    }
    const source = new EventSource(events);
    source.onmessage = redraw;
    source.addEventListener('end', () => { source.close(); redraw(); });
    source.onerror = () => {
      // The stream ended (the run finished) or the connection dropped: the
      // browser reconnects on its own; draw once so the page is current.
      redraw();
    };
  }

  document.addEventListener('DOMContentLoaded', () => {
    localTimes(document);
    setInterval(() => localTimes(document), 30000);
    for (const region of document.querySelectorAll('[data-live-events]')) live(region);
  });
})();
