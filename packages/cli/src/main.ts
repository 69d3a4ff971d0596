/** Entry point of the `keyward` command. */
export function main(_argv: string[]): Promise<number> {
  process.stdout.write('keyward: under construction\n');
  return Promise.resolve(0);
}
