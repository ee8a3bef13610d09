import { routingProblem, noWorkerMessage, handBackCommand } from '../../core/common/worker-routing';

const current = { deploymentName: 'stagefill-prod', buildId: 'b2' };

describe('a worker whose task queue routes its work to another deployment version', () => {
  test.each([
    ['an unversioned queue: every worker gets work', undefined, undefined, false, undefined],
    ['the current version itself', current, current, false, undefined],
    ['a new build that makes itself current', { deploymentName: 'stagefill-prod', buildId: 'b3' }, current, true, undefined],
    [
      'an unversioned worker',
      undefined,
      current,
      false,
      /this unversioned worker gets no work.*--unversioned.*STAGEFILL_DEPLOYMENT=stagefill-prod STAGEFILL_BUILD_ID=b2/,
    ],
    ['a worker of another deployment', { deploymentName: 'other', buildId: 'b2' }, current, false, /deployment other gets no work/],
    [
      'another build of the deployment',
      { deploymentName: 'stagefill-prod', buildId: 'b1' },
      current,
      false,
      /build b1 gets no new work until it is made current/,
    ],
  ])('%s', (_what, worker, cur, setsCurrent, expected) => {
    const problem = routingProblem('q', worker, cur, setsCurrent);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  test('status names the cause when the queue has a current version, and the other pollers that get no work', () => {
    expect(noWorkerMessage('wf', 'q', current, [undefined])).toMatch(
      /^wf: no worker of the run's build is polling: task queue q sends its work to build b2 of worker deployment stagefill-prod.*1 other worker polls it and gets no work/,
    );
    expect(noWorkerMessage('wf', 'q', current, [undefined])).toContain(handBackCommand('stagefill-prod'));
    expect(noWorkerMessage('wf', 'q', current, [current])).not.toMatch(/other worker/);
    expect(noWorkerMessage('wf', 'q', undefined, [])).toBeUndefined();
  });
});
