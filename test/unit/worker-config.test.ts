import { loadWorkerConfig, deploymentVersion, packageVersion, ConfigError } from '../../worker/config';

const base = { DATABASE_URL: 'postgres://u@localhost:5432/db' };

describe('worker config: Worker Versioning', () => {
  test('off by default: no deployment version, so existing workers stay unversioned', () => {
    const cfg = loadWorkerConfig(base);
    expect(cfg.STAGEFILL_SET_CURRENT_VERSION).toBe(false);
    expect(deploymentVersion(cfg)).toBeUndefined();
  });

  test('a deployment name alone: the build id is the package version', () => {
    const cfg = loadWorkerConfig({ ...base, STAGEFILL_DEPLOYMENT: 'stagefill-prod' });
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(deploymentVersion(cfg)).toEqual({ deploymentName: 'stagefill-prod', buildId: packageVersion() });
  });

  test('deployment, build id and set-current', () => {
    const cfg = loadWorkerConfig({
      ...base,
      STAGEFILL_DEPLOYMENT: 'd',
      STAGEFILL_BUILD_ID: '2026-12-01.1',
      STAGEFILL_SET_CURRENT_VERSION: 'true',
    });
    expect(deploymentVersion(cfg)).toEqual({ deploymentName: 'd', buildId: '2026-12-01.1' });
    expect(cfg.STAGEFILL_SET_CURRENT_VERSION).toBe(true);
  });

  test.each([
    [{ STAGEFILL_BUILD_ID: 'b1' }, /STAGEFILL_BUILD_ID is set but STAGEFILL_DEPLOYMENT is not/],
    [{ STAGEFILL_SET_CURRENT_VERSION: 'true' }, /STAGEFILL_SET_CURRENT_VERSION needs STAGEFILL_DEPLOYMENT/],
    [{ STAGEFILL_DEPLOYMENT: 'd', STAGEFILL_SET_CURRENT_VERSION: 'yes' }, /STAGEFILL_SET_CURRENT_VERSION: expected true or false/],
    [{ STAGEFILL_DEPLOYMENT: 'a/b' }, /STAGEFILL_DEPLOYMENT: a deployment name without "\/"/],
  ])('%j is refused naming the variable', (env, message) => {
    expect(() => loadWorkerConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...base, ...env })).toThrow(message);
  });
});
