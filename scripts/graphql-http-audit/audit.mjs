// The GraphQL over HTTP spec's audits (graphql-http's serverAudits) against
// the nspool at URL, each request with TOKEN as its Authorization. Prints
// one line per audit (ok; notice: a MAY not taken; warn: a SHOULD not met;
// error: a MUST not met) and exits 1 on any warn or error.
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', token);
  return fetch(input, { ...init, headers });
};
const audits = serverAudits({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const audit of audits) {
  const result = await audit.fn();
  counts[result.status] += 1;
  const reason = result.status === 'ok' ? '' : `: ${result.reason}`;
  console.log(`${result.status} ${audit.id} ${audit.name}${reason}`);
}
console.log(`${counts.ok} ok, ${counts.notice} notice, ${counts.warn} warn, ${counts.error} error`);
process.exit(counts.warn + counts.error === 0 ? 0 : 1);
