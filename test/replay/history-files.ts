import { temporal } from '@temporalio/proto';

/**
 * Histories on disk as protobufjs objects (enums by name, int64 and bytes as
 * strings). Not the `temporal workflow show -o json` dialect: the SDK's
 * historyFromJSON needs the protobufjs copy of @temporalio/common, which npm
 * installs apart from @temporalio/proto's, and their types do not match.
 */
const History = temporal.api.history.v1.History;
export type History = temporal.api.history.v1.History;

export function historyToFile(history: temporal.api.history.v1.IHistory): string {
  const obj = History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String });
  return JSON.stringify(obj, null, 1) + '\n';
}

export function historyFromFile(text: string): History {
  return History.fromObject(JSON.parse(text));
}
