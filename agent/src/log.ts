// One line per event on stderr; the daemon's stderr is its log file.
export type Logger = (message: string) => void;

export function createLogger(name: string): Logger {
  return (message) => process.stderr.write(`${new Date().toISOString()} ${name}: ${message}\n`);
}

export const silentLogger: Logger = () => {};
