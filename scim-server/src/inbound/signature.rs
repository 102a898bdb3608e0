//! Standard Webhooks signatures (the convention many webhook senders follow): the sender signs
//! `<webhook-id>.<webhook-timestamp>.<raw body>` with HMAC-SHA256 under a shared secret written
//! `whsec_<base64 key>`, and sends `webhook-signature: v1,<base64 signature>` (several entries,
//! space-separated, while a secret is being rotated).
//!
//! The receiver verifies the raw body before parsing it, compares in constant time, accepts when
//! any listed signature matches any configured secret, and refuses timestamps more than five
//! minutes away from its clock (replay protection).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How far a `webhook-timestamp` may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a request was refused (the detail is safe to return: it names no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A signing key decoded from its `whsec_…` form.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Decodes `whsec_<base64>` (the prefix is optional).
    pub fn parse(secret: &str) -> Result<Self, String> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .unwrap_or(secret.trim());
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "a webhook secret is `whsec_` followed by base64".to_string())?;
        if key.len() < 16 {
            return Err("a webhook secret must hold at least 16 bytes".into());
        }
        Ok(Self(key))
    }

    /// The `v1,<base64>` signature of a message (for senders: callbacks, tests).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Verifies a request's Standard Webhooks headers against `keys` at `now`.
pub fn verify(
    keys: &[SigningKey],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), Refused> {
    let (Some(id), Some(timestamp), Some(signature)) = (id, timestamp, signature) else {
        return Err(Refused(
            "the request must be signed: `webhook-id`, `webhook-timestamp` and \
             `webhook-signature` headers (Standard Webhooks)"
                .into(),
        ));
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refused("`webhook-timestamp` must be Unix seconds".into()))?;
    if (now.unix_timestamp() - ts).abs() > TOLERANCE_SECONDS {
        return Err(Refused(format!(
            "`webhook-timestamp` is more than {TOLERANCE_SECONDS} s away from the server's \
             clock: refused as a possible replay"
        )));
    }
    let offered: Vec<Vec<u8>> = signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    for key in keys {
        let expected = key.mac(id, ts, body);
        if offered.iter().any(|sig| bool::from(sig.ct_eq(&expected))) {
            return Ok(());
        }
    }
    Err(Refused(
        "no `webhook-signature` entry matches a secret of this source".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::parse(&format!("whsec_{}", STANDARD.encode([byte; 24]))).unwrap()
    }

    #[test]
    fn good_bad_stale_and_rotated_signatures() {
        let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        let ts = now.unix_timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let (old, new) = (key(1), key(2));
        let good = new.sign("msg_1", ts, body);
        let both = format!("{} {}", old.sign("msg_1", ts, body), good);
        let tss = ts.to_string();
        let stale = (ts - 301).to_string();
        let early = (ts + 301).to_string();
        // (keys configured, id, timestamp, signature, body, accepted)
        type Case<'a> = (Vec<SigningKey>, &'a str, &'a str, String, &'a [u8], bool);
        let cases: Vec<Case> = vec![
            (vec![new.clone()], "msg_1", &tss, good.clone(), body, true),
            (
                vec![old.clone(), new.clone()],
                "msg_1",
                &tss,
                good.clone(),
                body,
                true,
            ),
            (vec![old.clone()], "msg_1", &tss, both.clone(), body, true),
            (vec![old.clone()], "msg_1", &tss, good.clone(), body, false),
            (vec![new.clone()], "msg_2", &tss, good.clone(), body, false),
            (vec![new.clone()], "msg_1", &tss, good.clone(), b"{}", false),
            (
                vec![new.clone()],
                "msg_1",
                &stale,
                new.sign("msg_1", ts - 301, body),
                body,
                false,
            ),
            (
                vec![new.clone()],
                "msg_1",
                &early,
                new.sign("msg_1", ts + 301, body),
                body,
                false,
            ),
            (
                vec![new.clone()],
                "msg_1",
                &tss,
                "v1,not-base64!".into(),
                body,
                false,
            ),
            (
                vec![new.clone()],
                "msg_1",
                &tss,
                good.replace("v1,", "v2,"),
                body,
                false,
            ),
        ];
        for (i, (keys, id, t, sig, b, ok)) in cases.into_iter().enumerate() {
            let got = verify(&keys, Some(id), Some(t), Some(&sig), b, now);
            assert_eq!(got.is_ok(), ok, "case {i}: {got:?}");
        }
        let unsigned = verify(&[new], Some("msg_1"), Some(&tss), None, body, now).unwrap_err();
        assert!(unsigned.0.contains("webhook-signature"));
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(SigningKey::parse("whsec_%%%").is_err());
        assert!(SigningKey::parse(&format!("whsec_{}", STANDARD.encode([0u8; 8]))).is_err());
        assert!(SigningKey::parse(&STANDARD.encode([0u8; 32])).is_ok());
        assert_eq!(format!("{:?}", key(3)), "SigningKey(<redacted>)");
    }
}
