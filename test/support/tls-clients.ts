/** The real TLS clients e2e tests drive: curl and `openssl s_client`, run as processes. */
import { spawn } from 'node:child_process';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` with `input` on stdin (then closed); never rejects on a non-zero exit. */
export function run(command: string, args: string[], input = '', timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** `curl -s` with `args`; `-w` appends the status on its own last line. */
export async function curl(args: string[]): Promise<{ status: number; body: string; headers: string; stderr: string }> {
  const ran = await run('curl', ['-sS', '-D', '-', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const lines = ran.stdout.split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  const split = text.indexOf('\r\n\r\n');
  return { status, headers: split < 0 ? text : text.slice(0, split), body: split < 0 ? '' : text.slice(split + 4), stderr: ran.stderr };
}

/**
 * One `openssl s_client` connection to `address` asking for `servername` (none: -noservername),
 * sending one HTTP request and reading until the server closes. Reports the subject the server
 * presented and whether the session was new or resumed.
 */
export async function sClient(
  address: string,
  options: { servername?: string; caFile: string; sessOut?: string; sessIn?: string; extra?: string[] },
): Promise<{ subject: string | undefined; reused: boolean; verified: boolean; output: string }> {
  const args = ['s_client', '-connect', address, '-CAfile', options.caFile, '-ign_eof'];
  args.push(...(options.servername === undefined ? ['-noservername'] : ['-servername', options.servername]));
  if (options.sessOut !== undefined) args.push('-sess_out', options.sessOut);
  if (options.sessIn !== undefined) args.push('-sess_in', options.sessIn);
  args.push(...(options.extra ?? []));
  const host = options.servername ?? 'localhost';
  const ran = await run('openssl', args, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const output = `${ran.stdout}\n${ran.stderr}`;
  return {
    subject: /^subject=(.*)$/m.exec(ran.stdout)?.[1]?.trim(),
    reused: /^Reused, /m.test(ran.stdout),
    verified: /Verify return code: 0 \(ok\)/.test(ran.stdout),
    output,
  };
}
