// For tests/suite/console/harness.rs: a script that hangs where its own
// deadline cannot fire (a busy loop), so the Rust side must kill it, and
// chromium with it, at the test's deadline. It prints its child processes
// (chromium) for the test to watch.

import { readdirSync, readFileSync } from 'node:fs';
import { log, run } from './lib.mjs';

/// The ids of this process's children, from /proc.
function children() {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
        return Number(ppid) === process.pid;
      } catch {
        return false;
      }
    });
}

await run(async ({ page, step }) => {
  // Said first: on a loaded machine a page load can take most of the
  // deadline, and the test needs the pids whenever the kill comes.
  log(`children: ${children().join(' ')}`);
  await step('open a blank page', () => page.goto('about:blank'));
  await step('block the event loop', () => {
    for (;;);
  });
});
