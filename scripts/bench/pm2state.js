// Prints PM2's process list as one JSON line {name: [status, pid]} every 20 ms, using PM2's
// programmatic API (one connection to the daemon, no node start-up per poll).
// Env: PM2_MODULE = path of the pm2 package, PM2_HOME = the daemon's home.
const pm2 = require(process.env.PM2_MODULE);
pm2.connect(true, (err) => {
  if (err) { console.error(err); process.exit(2); }
  const poll = () => pm2.list((e, list) => {
    if (!e) {
      const out = {};
      for (const p of list) out[p.name] = [p.pm2_env.status, p.pid];
      process.stdout.write(JSON.stringify(out) + "\n");
    }
    setTimeout(poll, 20);
  });
  poll();
});
