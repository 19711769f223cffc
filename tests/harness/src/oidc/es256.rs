//! The ES256 key that signs the local issuer's ID tokens (compact JWS) and is published as its
//! JWKS. ring signs, because JWS wants the fixed-size `r || s` signature (rcgen's is DER); rcgen
//! writes and reads the PEM, as for the rest of the harness PKI.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::HarnessError;

/// An ECDSA P-256 signing key with its JWK key id.
pub struct Es256Key {
    pair: EcdsaKeyPair,
    pem: String,
    kid: String,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key").field("kid", &self.kid).finish()
    }
}

impl Es256Key {
    /// A fresh key.
    pub fn generate() -> Result<Self, HarnessError> {
        Self::from_pem(&KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?.serialize_pem())
    }

    /// A key from its PKCS#8 PEM (as [`Self::pem`] gives it).
    pub fn from_pem(pem: &str) -> Result<Self, HarnessError> {
        let der = KeyPair::from_pem(pem)?.serialize_der();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| {
                    HarnessError::Oidc(format!("the signing key is not an ECDSA P-256 key: {e}"))
                })?;
        // The RFC 7638 thumbprint would do as well; any stable id of the public key works.
        let digest = ring::digest::digest(&ring::digest::SHA256, pair.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(Self {
            pair,
            pem: pem.to_owned(),
            kid,
        })
    }

    /// PKCS#8 PEM of the private key.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The public key as a JWK (`kty` EC, `crv` P-256).
    pub fn jwk(&self) -> Value {
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
        })
    }

    /// `claims` as a compact JWS: `header.payload.signature`, each base64url.
    pub fn sign(&self, claims: &Value) -> Result<String, HarnessError> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|e| HarnessError::Oidc(format!("signing a token: {e}")))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    use super::*;

    #[test]
    fn signatures_verify_against_the_published_key() {
        let key = Es256Key::generate().unwrap();
        let token = key.sign(&json!({"sub": "ann"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.jwk()["kid"]);

        let jwk = key.jwk();
        let mut point = vec![4u8];
        for coordinate in ["x", "y"] {
            point.extend(
                URL_SAFE_NO_PAD
                    .decode(jwk[coordinate].as_str().unwrap())
                    .unwrap(),
            );
        }
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64, "JWS wants r || s, not DER");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the JWKS key verifies the signature");
    }

    #[test]
    fn a_key_survives_its_pem_and_other_keys_are_refused() {
        let key = Es256Key::generate().unwrap();
        let again = Es256Key::from_pem(key.pem()).unwrap();
        assert_eq!(again.jwk(), key.jwk());

        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let err = Es256Key::from_pem(&p384.serialize_pem()).unwrap_err();
        assert!(err.to_string().contains("not an ECDSA P-256 key"), "{err}");
    }
}
