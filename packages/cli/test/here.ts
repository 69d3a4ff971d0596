/**
 * Runs `keyward ARGS` in this process: the same `main` as the binary (argument
 * parsing, commands, error → exit code) with the given environment, no stdin
 * and no prompt, without a child process's start-up cost (~2 s of CPU per
 * spawn here). For tests whose subject is not the process boundary.
 */
export async function runCliHere(args: readonly string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string; err: string }> {
  const { PassThrough } = await import('node:stream');
  const { main } = await import('../src/main.js');
  const collect = () => {
    const s = new PassThrough();
    let text = '';
    s.setEncoding('utf8').on('data', (c: string) => { text += c; });
    return { s, text: () => text };
  };
  const out = collect();
  const err = collect();
  const stdin = new PassThrough();
  stdin.end();
  const code = await main(args, { stdin, stdout: out.s, stderr: err.s, env, prompt: () => Promise.resolve(null) });
  await new Promise((r) => setImmediate(r));
  return { code, out: out.text(), err: err.text() };
}
