import path from 'node:path';
import { readSpecData } from '../spec-load';
import { parseFleetSpec, type FleetSpec } from '../../steps/fleet-spec';

/** The fleet spec in `file`, or undefined when the file is not `kind: fleet` (the CLI then reads it as before). */
export function loadFleetSpecFile(file: string): FleetSpec | undefined {
  let data: unknown;
  try {
    data = readSpecData(file);
  } catch {
    return undefined; // the ordinary loader reports it
  }
  if ((data as { kind?: unknown })?.kind !== 'fleet') return undefined;
  return parseFleetSpec(data, file, (p) => {
    const changeFile = path.resolve(path.dirname(file), p);
    return readSpecData(changeFile, `${file} (change: ${p})`);
  });
}
