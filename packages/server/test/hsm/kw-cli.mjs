// The keyward CLI run from source (tests of the HSM mode spawn it as a user would, without a build).
const { main } = await import(new URL('../../../cli/src/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
