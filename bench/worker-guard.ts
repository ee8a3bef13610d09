// Preloaded (`node -r`) into the benchmark's worker process. When the
// benchmark ends, even by SIGKILL, this process is re-parented; it then drains
// and exits instead of lingering as an orphan. (Watching a stdin pipe instead
// does not work: the worker's runtime closes stdin at start.)
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 1000).unref();
