/**
 * An RSA key pair in the PEM forms a GitHub App's private key comes in (PKCS#1) and the emulator checks
 * its JWTs with (SPKI): what a test of App mode configures on both sides.
 */
import { generateKeyPairSync } from 'node:crypto';

export function appKeyPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
}
