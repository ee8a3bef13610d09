import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Spec } from '../steps/spec';
import { parseSpec, SpecError } from '../steps/spec';

/** A YAML or JSON file's data; a file that cannot be read or parsed is a SpecError naming `source`. */
export function readSpecData(file: string, source: string = file): unknown {
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

/** Reads a YAML or JSON spec file and validates it; every problem is a SpecError naming the field. */
export function loadSpecFile(file: string): Spec {
  return parseSpec(readSpecData(file), file);
}

/** One readable block for the terminal: the file, then a line per problem. */
export function formatSpecError(err: SpecError): string {
  const head = `invalid spec${err.source ? ` ${err.source}` : ''}:`;
  return [head, ...err.issues.map((i) => `  ${i.path || '(spec)'}: ${i.message}`)].join('\n');
}
