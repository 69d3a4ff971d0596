/**
 * A preload for `npm run bench:server -- --profile=DIR`: Node 20 refuses
 * `--cpu-prof` in NODE_OPTIONS, but accepts `--import`, which also reaches
 * the keyholder (the server spawns it with the same environment). Starts the
 * V8 CPU profiler in this process and writes `<DIR>/<pid>.cpuprofile` (a
 * Chrome DevTools profile, as `--cpu-prof` writes) when the process exits.
 * DIR is KW_CPU_PROFILE_DIR.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.KW_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // The same-thread session answers synchronously, so this runs before the process is gone.
    session.post('Profiler.stop', (err, r) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
