import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { SpecError } from '../../steps/spec';
import { parseFleetSpec, FleetSpec } from '../../steps/fleet-spec';

function readData(file: string, source: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError(
      [{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }],
      source,
    );
  }
  try {
    return path.extname(file).toLowerCase() === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new SpecError(
      [{ path: '', message: `not valid ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}` }],
      source,
    );
  }
}

/** The fleet spec in `file`, or undefined when the file is not `kind: fleet` (the CLI then reads it as before). */
export function loadFleetSpecFile(file: string): FleetSpec | undefined {
  let data: unknown;
  try {
    data = readData(file, file);
  } catch {
    return undefined; // the ordinary loader reports it
  }
  if ((data as { kind?: unknown })?.kind !== 'fleet') return undefined;
  return parseFleetSpec(data, file, (p) => {
    const changeFile = path.resolve(path.dirname(file), p);
    return readData(changeFile, `${file} (change: ${p})`);
  });
}
