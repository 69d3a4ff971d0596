/**
 * Reading a secret from the controlling terminal (`/dev/tty`), as age does:
 * standard input and output stay free for data, and nothing is echoed.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import tty from 'node:tty';
import { KeywardError } from '@keyward/core';

/** Asks `question` on the terminal; null when the process has no controlling terminal. */
export async function promptHidden(question: string): Promise<string | null> {
  let rfd: number;
  let wfd: number;
  try {
    rfd = openSync('/dev/tty', 'r');
  } catch {
    return null;
  }
  try {
    wfd = openSync('/dev/tty', 'w');
  } catch {
    closeSync(rfd);
    return null;
  }
  if (!tty.isatty(rfd)) {
    closeSync(rfd);
    closeSync(wfd);
    return null;
  }
  const input = new tty.ReadStream(rfd);
  try {
    // Echo off before the question appears: an answer typed right after it must not be shown.
    input.setRawMode(true);
    writeSync(wfd, question);
    const answer = await readHiddenLine(input);
    return answer;
  } finally {
    input.setRawMode(false);
    writeSync(wfd, '\n');
    input.destroy();
    closeSync(wfd);
  }
}

function readHiddenLine(input: tty.ReadStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let line = '';
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(() => resolve(line));
        if (ch === '\u0003' || (ch === '\u0004' && line === '')) {
          return finish(() => reject(new KeywardError('KW_INVALID_ARGUMENT', 'passphrase entry was cancelled')));
        }
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else if (ch === '\u0015') line = ''; // Ctrl-U
        else if (ch >= ' ') line += ch;
      }
    };
    const onEnd = () => finish(() => resolve(line));
    const finish = (f: () => void) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.pause();
      f();
    };
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume();
  });
}
