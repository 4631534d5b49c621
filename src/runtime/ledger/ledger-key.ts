// The ledger's Ed25519 signing key: created at first start in the data dir (sealed, see
// docs/formats/secrets-at-rest.md), loaded afterwards. Its public half is published with every export.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import type { SignatureVerifier } from "../../core/ledger/tree-head.ts";
import type { SecretFiles } from "../security/secret-files.ts";

export const ledgerKeyFileName = "ledger-key.pem";

export class LedgerKeyError extends Error {
  override readonly name = "LedgerKeyError";
}

export interface LedgerSigner {
  /** SHA-256 of the public key's SPKI DER, hex. */
  readonly keyId: string;
  /** The public key, SPKI PEM. */
  readonly publicKeyPem: string;
  /** Ed25519 signature of `message`, base64. */
  sign(message: Uint8Array): string;
  readonly verify: SignatureVerifier;
}

/** Key id of a public key: SHA-256 of its SPKI DER encoding, hex. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ format: "der", type: "spki" }))
    .digest("hex");
}

/** A verifier for a PEM public key, as the offline audit pins it. */
export function ledgerVerifier(publicKeyPem: string): { keyId: string; verify: SignatureVerifier } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicKeyPem);
  } catch (error) {
    throw new LedgerKeyError(`not a public key in PEM: ${(error as Error).message}`);
  }
  if (publicKey.asymmetricKeyType !== "ed25519")
    throw new LedgerKeyError(`the ledger key must be Ed25519, not ${publicKey.asymmetricKeyType}`);
  return {
    keyId: keyIdOf(publicKey),
    verify: (message, signatureBase64) => {
      try {
        return verify(null, message, publicKey, Buffer.from(signatureBase64, "base64"));
      } catch {
        return false;
      }
    },
  };
}

function signerFor(privateKey: KeyObject): LedgerSigner {
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ format: "pem", type: "spki" }).toString();
  const { keyId, verify: verifySignature } = ledgerVerifier(publicKeyPem);
  return {
    keyId,
    publicKeyPem,
    sign: (message) => sign(null, message, privateKey).toString("base64"),
    verify: verifySignature,
  };
}

/** Loads the sealed key `ledger-key.pem`, or creates it when there is none. */
export function loadOrCreateLedgerKey(secrets: SecretFiles): LedgerSigner {
  const path = secrets.pathOf(ledgerKeyFileName);
  const pem = secrets.readText(ledgerKeyFileName);
  if (pem !== undefined) {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch (error) {
      throw new LedgerKeyError(`cannot read the ledger key ${path}: ${(error as Error).message}`);
    }
    if (privateKey.asymmetricKeyType !== "ed25519")
      throw new LedgerKeyError(`${path} is not an Ed25519 key`);
    return signerFor(privateKey);
  }
  const { privateKey } = generateKeyPairSync("ed25519");
  secrets.write(ledgerKeyFileName, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
  return signerFor(privateKey);
}
