import { mergeServed, assignToProcesses } from '../../core/fleet/served';
import { fleetProcessIdentity, processKeyOf, fleetProcessQueue } from '../../core/fleet/ids';

test("the processes' targets merge into one list by name, each with the processes serving it; a silent process is named", () => {
  const merged = mergeServed([
    {
      process: 'b',
      targets: [
        { name: 't3', tags: { cluster: 'b' } },
        { name: 't1', tags: { cluster: 'b' }, answers: true },
      ],
    },
    {
      process: 'a',
      targets: [
        { name: 't1', tags: { cluster: 'a' }, answers: false, error: 'ECONNREFUSED' },
        { name: 't2', tags: {} },
      ],
    },
    { process: 'c', error: 'did not answer: timeout' },
  ]);
  expect(merged.targets).toEqual([
    // served by both: the first process's tags, and it answers because one of them reaches it
    { name: 't1', tags: { cluster: 'a' }, answers: true, workers: ['a', 'b'] },
    { name: 't2', tags: {}, workers: ['a'] },
    { name: 't3', tags: { cluster: 'b' }, workers: ['b'] },
  ]);
  expect(merged.processes).toEqual([
    { process: 'a', targets: 2 },
    { process: 'b', targets: 2 },
    { process: 'c', error: 'did not answer: timeout' },
  ]);
  // the shapes of t1, t3 and t9 (served by no one): each read by the first process serving it
  expect([...assignToProcesses(merged, ['t3', 't1', 't9'])]).toEqual([
    ['b', ['t3']],
    ['a', ['t1']],
  ]);
  // a has gone silent since it answered (SIGKILLed): t1 is read by b, which serves it too; t2, served by a alone, by no one
  expect([...assignToProcesses(merged, ['t1', 't2', 't3'], new Set(['a']))]).toEqual([['b', ['t1', 't3']]]);
});

test("a process's identity on the control queue names its key; other pollers are not fleet processes", () => {
  expect(processKeyOf(fleetProcessIdentity('host-12-ab01'))).toBe('host-12-ab01');
  expect(processKeyOf('12@host')).toBeUndefined();
  expect(processKeyOf(fleetProcessIdentity(''))).toBeUndefined();
  expect(fleetProcessQueue('stagefill', 'host-12-ab01')).toBe('stagefill#fleet:host-12-ab01');
});
