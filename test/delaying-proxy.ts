/**
 * An HTTP proxy in front of a daemon that holds back its answers to some requests (a slow network for one
 * call, to order what two clients see); the others pass at once. Run as a process of its own (see
 * delayingProxy in http-helpers.ts): `node delaying-proxy.js TARGET_URL DELAYS_JSON`. Logs `listening` with
 * its URL, as the daemons do, and ends when the process that started it does.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Delay } from './http-helpers.js';

const [target, delaysJson] = process.argv.slice(2);
const to = new URL(target!);
const delays = JSON.parse(delaysJson!) as Delay[];

const server = createServer((req, res) => {
  const path = (req.url ?? '').replace(/\?.*$/, '');
  const delay = delays.find((d) => d.method === req.method && d.path === path);
  const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, timeout: 30_000 }, (answer) => {
    setTimeout(() => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    }, delay?.ms ?? 0);
  });
  upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
});

// Gone with the test process, however it ends (killed, crashed): its parent changes then.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500);
