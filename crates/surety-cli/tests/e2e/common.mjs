// What the e2e scripts share: reading their environment, loading the private JWK files the
// Rust tests write, reporting failures readably, and printing the JSON lines the tests read.

import { readFile } from 'node:fs/promises';

/** A failure of the scenario itself (not of a library): reported by its message alone. */
export class Failure extends Error {}

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Failure(`environment variable ${name} is not set`);
  return value;
}

/** Writes one JSON line and waits until it has left the process: the test reads it mid-run. */
export function emit(value) {
  return new Promise((resolve, reject) =>
    process.stdout.write(`${JSON.stringify(value)}\n`, (err) => (err ? reject(err) : resolve())),
  );
}

/**
 * Imports a private JWK file as a WebCrypto key pair. The public half is extractable because
 * DPoP proofs carry it in their header.
 */
export async function keyPair(path) {
  const jwk = JSON.parse(await readFile(path, 'utf8'));
  const { kid, alg: _alg, d, ...pub } = jwk;
  if (typeof d !== 'string') throw new Failure(`${path} is not a private JWK`);
  let algorithm;
  if (pub.kty === 'OKP' && pub.crv === 'Ed25519') algorithm = { name: 'Ed25519' };
  else if (pub.kty === 'EC' && pub.crv === 'P-256') algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  else throw new Failure(`${path}: unsupported key ${pub.kty}/${pub.crv}`);
  const privateKey = await crypto.subtle.importKey('jwk', { ...pub, d }, algorithm, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', pub, algorithm, true, ['verify']);
  return { kid, pub, privateKey, publicKey };
}

/** An error as one line: the OAuth error fields when there are some. */
export function describe(err) {
  if (err instanceof Failure) return err.message;
  const parts = [`${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`];
  if (err?.code) parts.push(`code=${err.code}`);
  if (err?.status) parts.push(`status=${err.status}`);
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  if (err?.cause !== undefined) {
    try {
      parts.push(`cause=${JSON.stringify(err.cause)}`);
    } catch {
      parts.push(`cause=${String(err.cause)}`);
    }
  }
  return parts.join(' ');
}
