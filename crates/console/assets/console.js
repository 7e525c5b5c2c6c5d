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
      const text = el.hasAttribute('data-relative')
        ? `${absolute.format(date)} (${ago(date)})`
        : absolute.format(date);
      // Unchanged text is left alone: in a live region a rewrite is news.
      if (el.textContent !== text) el.textContent = text;
    }
  }

  // Makes `current`'s children look like `next`'s, replacing only what
  // changed: focus stays where it was, and a live region announces only the
  // news rather than all of itself.
  function patchChildren(current, next) {
    const before = Array.from(current.childNodes);
    const after = Array.from(next.childNodes);
    if (before.length !== after.length) {
      current.replaceChildren(...after);
      return;
    }
    before.forEach((child, i) => patch(child, after[i]));
  }

  function patch(current, next) {
    if (current.isEqualNode(next)) return;
    if (current.nodeType !== Node.ELEMENT_NODE || current.nodeName !== next.nodeName) {
      current.replaceWith(next);
      return;
    }
    for (const name of current.getAttributeNames()) {
      if (!next.hasAttribute(name)) current.removeAttribute(name);
    }
    for (const name of next.getAttributeNames()) {
      const value = next.getAttribute(name);
      if (current.getAttribute(name) !== value) current.setAttribute(name, value);
    }
    patchChildren(current, next);
  }

  // A region with data-live-events (a run's event stream on this console,
  // its events unnamed, then `end` when the run has ended) and
  // data-live-fragment (its HTML) is redrawn on every event.
  function live(region) {
    const events = region.getAttribute('data-live-events');
    const fragment = region.getAttribute('data-live-fragment');
    if (!events || !fragment || !window.EventSource) return;
    let pending = false;
    let again = false;
    async function redraw() {
      // Events that arrive during a redraw ask for one more after it, so
      // the last one is always drawn.
      if (pending) {
        again = true;
        return;
      }
      pending = true;
      try {
        const answer = await fetch(fragment, { headers: { Accept: 'text/html' } });
        if (answer.ok) {
          const fresh = document.createElement('template');
          fresh.innerHTML = await answer.text();
          localTimes(fresh.content);
          patchChildren(region, fresh.content);
          region.setAttribute('data-live-updated', String(Date.now()));
        }
      } finally {
        pending = false;
        if (again) {
          again = false;
          redraw();
        }
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
