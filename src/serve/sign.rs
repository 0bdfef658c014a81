//! Request signatures as the clients send them: AWS Signature Version 4 (in the
//! `Authorization` header or the query string), Alibaba's ACS3-HMAC-SHA256 (the current
//! SDK) and the RPC signature of the legacy SDK (`SignatureMethod=HMAC-SHA1` or
//! `HMAC-SHA256`, base64 in `Signature`). Without credentials every signature is accepted as
//! sent; with them, the server recomputes it and checks what the clouds check besides:
//!
//! - The signed payload hash (`x-amz-content-sha256`, `x-acs-content-sha256`) must be the
//!   body's. `UNSIGNED-PAYLOAD` (which AWS allows for S3 only) is accepted only with an
//!   empty body: EC2 Query and ECS RPC carry their parameters in the body, so an unsigned
//!   body would leave them unsigned. A presigned (query) SigV4 request may be signed with
//!   `UNSIGNED-PAYLOAD` on the same terms.
//! - Time: a SigV4 `X-Amz-Date` more than [`WINDOW_SECS`] from the server's clock, or a
//!   presigned request past `X-Amz-Date + X-Amz-Expires`, is expired; the credential scope's
//!   date must be `X-Amz-Date`'s. Alibaba's `Timestamp` (RPC) and `x-acs-date` (ACS3) must be
//!   given, readable, and within [`WINDOW_SECS`]; their nonce (`SignatureNonce`,
//!   `x-acs-signature-nonce`) must be given and not used by the same key within the window
//!   ([`Nonces`]).
//!
//! The order: signature shape, access key, time, signature, payload hash, nonce (a nonce
//! is spent only by a request whose signature is right). The clock is the caller's (`now`,
//! seconds since the Unix epoch), so tests pass the time they mean.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::model::time::{civil, seconds};

/// Access key ID → secret.
#[derive(Clone, Debug, Default)]
pub struct Credentials(BTreeMap<String, String>);

/// A credentials file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("credentials line {line}: {why}")]
pub struct CredentialsError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub why: String,
}

impl Credentials {
    /// Reads `ACCESS_KEY_ID SECRET` lines (blank lines and `#` comments skipped) or a JSON
    /// object `{"ACCESS_KEY_ID": "SECRET", …}`.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let mut map = BTreeMap::new();
        if text.trim_start().starts_with('{') {
            let v: BTreeMap<String, String> =
                serde_json::from_str(text).map_err(|e| CredentialsError {
                    line: e.line(),
                    why: e.to_string(),
                })?;
            return Ok(Credentials(v));
        }
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(secret), None) => {
                    map.insert(id.to_string(), secret.to_string());
                }
                _ => {
                    return Err(CredentialsError {
                        line: i + 1,
                        why: "expected 'ACCESS_KEY_ID SECRET'".into(),
                    })
                }
            }
        }
        if map.is_empty() {
            return Err(CredentialsError {
                line: 0,
                why: "no credentials".into(),
            });
        }
        Ok(Credentials(map))
    }

    fn secret(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }
}

/// How a request is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// SigV4 in the `Authorization` header.
    SigV4Header,
    /// SigV4 in the query string (`X-Amz-Signature`).
    SigV4Query,
    /// ACS3-HMAC-SHA256 in the `Authorization` header.
    Acs3,
    /// The legacy RPC signature parameter.
    Rpc,
    /// Not signed.
    None,
}

/// The parts of an HTTP request a signature covers.
pub struct Signed<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// Headers, names as sent.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// How far a signature's time may be from the server's clock, either way: 15 minutes, as
/// both clouds document.
pub const WINDOW_SECS: i64 = 15 * 60;

/// The nonces signed requests used within the last [`WINDOW_SECS`], per access key.
#[derive(Debug, Default)]
pub struct Nonces(Mutex<HashMap<(String, String), i64>>);

impl Nonces {
    /// Records `nonce` of `key` at `now`; false when the key used it within the window.
    fn spend(&self, key: &str, nonce: &str, now: i64) -> bool {
        // A panic elsewhere cannot leave the map half-updated: keep serving.
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| now - *at <= WINDOW_SECS);
        match seen.entry((key.to_string(), nonce.to_string())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(now);
                true
            }
        }
    }
}

/// The verification's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The signature is right.
    Good,
    /// Not signed, or signed in a shape that cannot be read.
    Missing,
    /// The access key is not in the credentials.
    UnknownKey(String),
    /// The signature differs from the server's; for the RPC signature, the server's string
    /// to sign (Alibaba puts it in the error message, and the legacy SDK reads it back).
    Mismatch(Option<String>),
    /// The signature is right for the payload hash the request claims, but the body hashes
    /// otherwise (or is not empty under `UNSIGNED-PAYLOAD`).
    BodyMismatch {
        /// The hash the request claims.
        claimed: String,
        /// The body's.
        computed: String,
    },
    /// The request's time is too far from the server's clock, or a presigned request has
    /// expired: what AWS says about it.
    Expired(String),
    /// The credential scope's date is not the request's: what AWS says about it.
    ScopeDate(String),
    /// SigV4 fields that cannot be read: what AWS says about them.
    Malformed(String),
    /// A time or nonce parameter Alibaba requires is missing: its name.
    MissingParameter(String),
    /// Alibaba's time parameter cannot be read: its name.
    BadTime(String),
    /// The nonce was used by this key within the window.
    NonceUsed,
}

impl<'a> Signed<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The signature style, from the `Authorization` header and the parameters.
    pub fn style(&self, params: &[(String, String)]) -> Style {
        let auth = self.header("authorization").unwrap_or("");
        if auth.starts_with("AWS4-HMAC-SHA256") {
            Style::SigV4Header
        } else if auth.starts_with("ACS3-") {
            Style::Acs3
        } else if params.iter().any(|(k, _)| k == "X-Amz-Signature") {
            Style::SigV4Query
        } else if params.iter().any(|(k, _)| k == "Signature") {
            Style::Rpc
        } else {
            Style::None
        }
    }

    /// Checks the signature against `credentials` at `now` (seconds since the Unix epoch),
    /// spending its nonce in `nonces` when it is right. `params` are the request's
    /// parameters (query and form body).
    pub fn verify(
        &self,
        credentials: &Credentials,
        params: &[(String, String)],
        now: i64,
        nonces: &Nonces,
    ) -> Verdict {
        match self.style(params) {
            Style::SigV4Header => self.sigv4_header(credentials, now),
            Style::SigV4Query => self.sigv4_query(credentials, now),
            Style::Acs3 => self.acs3(credentials, now, nonces),
            Style::Rpc => self.rpc(credentials, params, now, nonces),
            Style::None => Verdict::Missing,
        }
    }

    /// The body's SHA-256, hex.
    fn body_hash(&self) -> String {
        hex::encode(Sha256::digest(self.body))
    }

    /// A right signature over the `claimed` payload hash, judged against the body.
    fn payload(&self, claimed: &str) -> Verdict {
        let computed = self.body_hash();
        let unsigned_ok = claimed == UNSIGNED && self.body.is_empty();
        if unsigned_ok || claimed.eq_ignore_ascii_case(&computed) {
            Verdict::Good
        } else {
            Verdict::BodyMismatch {
                claimed: claimed.to_string(),
                computed,
            }
        }
    }

    fn sigv4_header(&self, creds: &Credentials, now: i64) -> Verdict {
        let auth = self.header("authorization").unwrap_or("");
        let fields = auth_fields(auth.trim_start_matches("AWS4-HMAC-SHA256"));
        let (Some(credential), Some(signed), Some(signature)) = (
            fields.get("Credential"),
            fields.get("SignedHeaders"),
            fields.get("Signature"),
        ) else {
            return Verdict::Missing;
        };
        let Some(date) = self.header("x-amz-date") else {
            return Verdict::Missing;
        };
        let payload = match self.header("x-amz-content-sha256") {
            Some(p) => p.trim().to_string(),
            None => self.body_hash(),
        };
        let query = canonical_query(&self.query_pairs(), None);
        let signed = SigV4 {
            credential,
            signed,
            signature,
            date,
            expires: None,
        };
        match self.sigv4_check(creds, &signed, now, &query, std::slice::from_ref(&payload)) {
            Verdict::Good => self.payload(&payload),
            other => other,
        }
    }

    fn sigv4_query(&self, creds: &Credentials, now: i64) -> Verdict {
        let pairs = self.query_pairs();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(credential), Some(signed), Some(signature), Some(date)) = (
            get("X-Amz-Credential"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Signature"),
            get("X-Amz-Date"),
        ) else {
            return Verdict::Missing;
        };
        let query = canonical_query(&pairs, Some("X-Amz-Signature"));
        // UNSIGNED-PAYLOAD only when there is no body to leave unsigned.
        let mut payloads = vec![self.body_hash()];
        if self.body.is_empty() {
            payloads.push(UNSIGNED.to_string());
        }
        let signed = SigV4 {
            credential,
            signed,
            signature,
            date,
            expires: Some(get("X-Amz-Expires")),
        };
        self.sigv4_check(creds, &signed, now, &query, &payloads)
    }

    /// The key, the scope's date, the time, then the signature over each of `payloads`.
    fn sigv4_check(
        &self,
        creds: &Credentials,
        v4: &SigV4<'_>,
        now: i64,
        query: &str,
        payloads: &[String],
    ) -> Verdict {
        let (signed, signature, date) = (v4.signed, v4.signature, v4.date);
        let mut scope = v4.credential.splitn(2, '/');
        let (Some(key), Some(scope)) = (scope.next(), scope.next()) else {
            return Verdict::Missing;
        };
        let Some(secret) = creds.secret(key) else {
            return Verdict::UnknownKey(key.to_string());
        };
        let parts: Vec<&str> = scope.split('/').collect();
        let [day, region, service, terminator] = parts[..] else {
            return Verdict::Missing;
        };
        let Some(at) = amz_time(date) else {
            return Verdict::Malformed(format!(
                "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ));
        };
        if !date.starts_with(day) || day.len() != 8 {
            return Verdict::ScopeDate(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{day}' != '{}', from '{date}'.",
                &date[..8]
            ));
        }
        if let Some(late) = v4.too_late(at, now) {
            return late;
        }
        let headers = self.canonical_headers(signed);
        let mut k = hmac256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
        k = hmac256(&k, region.as_bytes());
        k = hmac256(&k, service.as_bytes());
        k = hmac256(&k, terminator.as_bytes());
        for payload in payloads {
            let canonical = format!(
                "{}\n{}\n{query}\n{headers}\n{signed}\n{payload}",
                self.method,
                uri_path(self.path)
            );
            let to_sign = format!(
                "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
                hex::encode(Sha256::digest(canonical.as_bytes()))
            );
            if hex::encode(hmac256(&k, to_sign.as_bytes())) == signature {
                return Verdict::Good;
            }
        }
        Verdict::Mismatch(None)
    }

    fn acs3(&self, creds: &Credentials, now: i64, nonces: &Nonces) -> Verdict {
        let auth = self.header("authorization").unwrap_or("");
        let Some((algorithm, rest)) = auth.split_once(' ') else {
            return Verdict::Missing;
        };
        let fields = auth_fields(rest);
        let (Some(key), Some(signed), Some(signature)) = (
            fields.get("Credential"),
            fields.get("SignedHeaders"),
            fields.get("Signature"),
        ) else {
            return Verdict::Missing;
        };
        let Some(secret) = creds.secret(key) else {
            return Verdict::UnknownKey(key.to_string());
        };
        if let Some(refused) = alibaba_time(self.header("x-acs-date"), "x-acs-date", now) {
            return refused;
        }
        let Some(nonce) = self.header("x-acs-signature-nonce") else {
            return Verdict::MissingParameter("x-acs-signature-nonce".into());
        };
        let payload = match self.header("x-acs-content-sha256") {
            Some(p) => p.trim().to_string(),
            None => self.body_hash(),
        };
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{signed}\n{payload}",
            self.method,
            uri_path(self.path),
            canonical_query(&self.query_pairs(), None),
            self.canonical_headers(signed)
        );
        let to_sign = format!(
            "{algorithm}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        if hex::encode(hmac256(secret.as_bytes(), to_sign.as_bytes())) != *signature {
            return Verdict::Mismatch(None);
        }
        match self.payload(&payload) {
            Verdict::Good if !nonces.spend(key, nonce, now) => Verdict::NonceUsed,
            other => other,
        }
    }

    fn rpc(
        &self,
        creds: &Credentials,
        params: &[(String, String)],
        now: i64,
        nonces: &Nonces,
    ) -> Verdict {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(key), Some(signature)) = (get("AccessKeyId"), get("Signature")) else {
            return Verdict::Missing;
        };
        let Some(secret) = creds.secret(key) else {
            return Verdict::UnknownKey(key.to_string());
        };
        if let Some(refused) = alibaba_time(get("Timestamp"), "Timestamp", now) {
            return refused;
        }
        let Some(nonce) = get("SignatureNonce").filter(|n| !n.is_empty()) else {
            return Verdict::MissingParameter("SignatureNonce".into());
        };
        let mut sorted: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .map(|(k, v)| (encode(k), encode(v)))
            .collect();
        sorted.sort();
        let canonical = sorted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let to_sign = format!("{}&%2F&{}", self.method, encode(&canonical));
        let key_bytes = format!("{secret}&");
        let mac = match get("SignatureMethod") {
            Some("HMAC-SHA256") => hmac256(key_bytes.as_bytes(), to_sign.as_bytes()),
            _ => hmac1(key_bytes.as_bytes(), to_sign.as_bytes()),
        };
        if base64::engine::general_purpose::STANDARD.encode(mac) != signature {
            return Verdict::Mismatch(Some(to_sign));
        }
        if nonces.spend(key, nonce, now) {
            Verdict::Good
        } else {
            Verdict::NonceUsed
        }
    }

    /// `name:value\n` for each signed header, values trimmed and inner blanks folded,
    /// repeated headers joined by commas.
    fn canonical_headers(&self, signed: &str) -> String {
        let mut out = String::new();
        for name in signed.split(';') {
            let values: Vec<String> = self
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            out.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        out
    }
}

/// The payload hash AWS allows for S3 (here: only for an empty body).
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// The fields of a SigV4 signature, from the header or the query string.
struct SigV4<'a> {
    credential: &'a str,
    signed: &'a str,
    signature: &'a str,
    date: &'a str,
    /// Presigned: `X-Amz-Expires` as given (`Some(None)`: not given).
    expires: Option<Option<&'a str>>,
}

impl SigV4<'_> {
    /// Why a request signed at `at` is refused at `now`, if it is: more than the window in
    /// the future, or past its presigned expiry, or (not presigned, or presigned without
    /// `X-Amz-Expires`) more than the window in the past.
    fn too_late(&self, at: i64, now: i64) -> Option<Verdict> {
        let date = self.date;
        if at - now > WINDOW_SECS {
            return Some(Verdict::Expired(format!(
                "Signature not yet current: {date} is still later than {} ({} + 15 min.)",
                amz_format(now + WINDOW_SECS),
                amz_format(now)
            )));
        }
        match self.expires {
            Some(Some(text)) => {
                let Some(secs) = text
                    .parse::<i64>()
                    .ok()
                    .filter(|s| (1..=604_800).contains(s))
                else {
                    return Some(Verdict::Malformed(format!(
                        "X-Amz-Expires must be a whole number of seconds from 1 to 604800; got '{text}'"
                    )));
                };
                (now > at + secs).then(|| Verdict::Expired("Request has expired".into()))
            }
            _ => (now - at > WINDOW_SECS).then(|| {
                Verdict::Expired(format!(
                    "Signature expired: {date} is now earlier than {} ({} - 15 min.)",
                    amz_format(now - WINDOW_SECS),
                    amz_format(now)
                ))
            }),
        }
    }
}

/// Alibaba's time parameter (`Timestamp`, `x-acs-date`): why it is refused at `now`, if it is.
fn alibaba_time(text: Option<&str>, name: &str, now: i64) -> Option<Verdict> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Some(Verdict::MissingParameter(name.into()));
    };
    let Some(at) = iso_time(text) else {
        return Some(Verdict::BadTime(name.into()));
    };
    ((now - at).abs() > WINDOW_SECS).then(|| Verdict::Expired(text.to_string()))
}

/// Digits only, as a number.
fn digits(text: &str) -> Option<i64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// SigV4's `YYYYMMDDTHHMMSSZ`.
fn amz_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(text.get(r)?);
    seconds(
        [n(0..4)?, n(4..6)?, n(6..8)?],
        [n(9..11)?, n(11..13)?, n(13..15)?],
    )
}

/// SigV4's `YYYYMMDDTHHMMSSZ` of `secs`.
fn amz_format(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Alibaba's ISO 8601 UTC time, `YYYY-MM-DDThh:mm:ssZ` (fractions of a second allowed).
fn iso_time(text: &str) -> Option<i64> {
    let body = text.strip_suffix('Z')?;
    let (date, time) = body.split_once('T')?;
    let time = time.split_once('.').map_or(
        time,
        |(t, frac)| {
            if digits(frac).is_some() {
                t
            } else {
                ""
            }
        },
    );
    let mut d = date.split('-');
    let mut t = time.split(':');
    let part = |it: &mut std::str::Split<'_, char>, len: usize| {
        it.next().filter(|p| p.len() == len).and_then(digits)
    };
    let ymd = [part(&mut d, 4)?, part(&mut d, 2)?, part(&mut d, 2)?];
    let hms = [part(&mut t, 2)?, part(&mut t, 2)?, part(&mut t, 2)?];
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    seconds(ymd, hms)
}

/// `Key=value` fields of an `Authorization` header, separated by commas.
fn auth_fields(text: &str) -> BTreeMap<&str, &str> {
    text.split(',')
        .filter_map(|f| f.trim().split_once('='))
        .collect()
}

/// The path as signed: `/` when empty.
fn uri_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Sorted `encode(k)=encode(v)` pairs joined by `&`, without the pair named `skip`.
fn canonical_query(pairs: &[(String, String)], skip: Option<&str>) -> String {
    let mut sorted: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~`, upper-case hex (what
/// both SigV4 and Alibaba's signatures use).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac1(key: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::parse("# test\nAKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")
            .unwrap()
    }

    /// AWS's own example (the "GET iam ListUsers" request of the SigV4 documentation).
    #[test]
    fn sigv4_matches_the_documented_example() {
        let headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), "iam.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
            ("Authorization".to_string(), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7".to_string()),
        ];
        let mut req = Signed {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let now = amz_time("20150830T123600Z").unwrap();
        let nonces = Nonces::default();
        assert_eq!(req.style(&[]), Style::SigV4Header);
        assert_eq!(req.verify(&creds(), &[], now, &nonces), Verdict::Good);
        req.query = "Action=ListUsers&Version=2010-05-09";
        assert_eq!(
            req.verify(&creds(), &[], now, &nonces),
            Verdict::Mismatch(None)
        );
        let other = Credentials::parse("{\"AKIDOTHER\": \"x\"}").unwrap();
        assert_eq!(
            req.verify(&other, &[], now, &nonces),
            Verdict::UnknownKey("AKIDEXAMPLE".into())
        );
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// A SigV4 `Authorization` header as botocore writes it (for tests): signed headers
    /// `host;x-amz-date` and `x-amz-content-sha256` when `payload` is given, over the body's
    /// hash unless `payload` says otherwise; the scope's day is `day`.
    fn sigv4(
        query: &str,
        body: &[u8],
        date: &str,
        day: &str,
        payload: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1".to_string()),
            ("X-Amz-Date".to_string(), date.to_string()),
        ];
        let mut signed = "host;x-amz-date".to_string();
        if let Some(p) = payload {
            headers.push(("X-Amz-Content-Sha256".into(), p.into()));
            signed.push_str(";x-amz-content-sha256");
        }
        let req = Signed {
            method: "POST",
            path: "/",
            query,
            headers: &headers,
            body,
        };
        let hash = payload.map_or_else(|| req.body_hash(), str::to_string);
        let canonical = format!(
            "POST\n/\n{}\n{}\n{signed}\n{hash}",
            canonical_query(&req.query_pairs(), None),
            req.canonical_headers(&signed)
        );
        let scope = format!("{day}/us-east-1/ec2/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut k = hmac256(format!("AWS4{SECRET}").as_bytes(), day.as_bytes());
        for part in ["us-east-1", "ec2", "aws4_request"] {
            k = hmac256(&k, part.as_bytes());
        }
        let signature = hex::encode(hmac256(&k, to_sign.as_bytes()));
        headers.push((
            "Authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders={signed}, Signature={signature}"),
        ));
        headers
    }

    fn check(headers: &[(String, String)], query: &str, body: &[u8], now: i64) -> Verdict {
        let req = Signed {
            method: "POST",
            path: "/",
            query,
            headers,
            body,
        };
        req.verify(&creds(), &[], now, &Nonces::default())
    }

    /// Bug: the body could be swapped under a signature that covers `x-amz-content-sha256`,
    /// which was trusted without hashing the body.
    #[test]
    fn sigv4_header_rejects_a_body_other_than_its_payload_hash() {
        let now = amz_time("20261207T120000Z").unwrap();
        let date = "20261207T120000Z";
        let body = b"Action=DescribeVpcs&Version=2016-11-15";
        let hash = hex::encode(Sha256::digest(body));
        let h = sigv4("", body, date, "20261207", Some(&hash));
        assert_eq!(check(&h, "", body, now), Verdict::Good);
        let swapped = b"Action=RevokeSecurityGroupIngress&GroupId=sg-1&SecurityGroupRuleId.1=sgr-1";
        assert!(matches!(
            check(&h, "", swapped, now),
            Verdict::BodyMismatch { claimed, .. } if claimed == hash
        ));
        // Without the header the body's hash is what is signed: a swap is a mismatch.
        let h = sigv4("", body, date, "20261207", None);
        assert_eq!(check(&h, "", swapped, now), Verdict::Mismatch(None));
        // UNSIGNED-PAYLOAD: only with nothing in the body to leave unsigned.
        let h = sigv4("Action=DescribeVpcs", b"", date, "20261207", Some(UNSIGNED));
        assert_eq!(check(&h, "Action=DescribeVpcs", b"", now), Verdict::Good);
        let h = sigv4("", body, date, "20261207", Some(UNSIGNED));
        assert!(matches!(
            check(&h, "", body, now),
            Verdict::BodyMismatch { .. }
        ));
    }

    /// Bug: SigV4 signatures never aged: `X-Amz-Date` more than 15 minutes either way is
    /// RequestExpired, the scope's date must be `X-Amz-Date`'s, a presigned request expires
    /// at `X-Amz-Date + X-Amz-Expires`.
    #[test]
    fn sigv4_signatures_expire() {
        let date = "20261207T120000Z";
        let at = amz_time(date).unwrap();
        let body = b"Action=DescribeVpcs&Version=2016-11-15";
        let h = sigv4("", body, date, "20261207", None);
        assert_eq!(check(&h, "", body, at + WINDOW_SECS), Verdict::Good);
        assert_eq!(check(&h, "", body, at - WINDOW_SECS), Verdict::Good);
        assert_eq!(
            check(&h, "", body, at + WINDOW_SECS + 1),
            Verdict::Expired("Signature expired: 20261207T120000Z is now earlier than 20261207T120001Z (20261207T121501Z - 15 min.)".into())
        );
        assert!(matches!(
            check(&h, "", body, at - WINDOW_SECS - 1),
            Verdict::Expired(m) if m.starts_with("Signature not yet current: 20261207T120000Z")
        ));
        let h = sigv4("", body, date, "20261206", None);
        assert!(matches!(
            check(&h, "", body, at),
            Verdict::ScopeDate(m) if m.contains("'20261206' != '20261207'")
        ));
        let h = sigv4("", body, "2026-12-07T12:00:00Z", "20261207", None);
        assert!(matches!(check(&h, "", body, at), Verdict::Malformed(_)));
        // Presigned: valid until X-Amz-Date + X-Amz-Expires, however old.
        let presigned = |expires: &str| {
            let mut q = format!("Action=DescribeVpcs&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261207%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-Date={date}&X-Amz-SignedHeaders=host");
            if !expires.is_empty() {
                q.push_str(&format!("&X-Amz-Expires={expires}"));
            }
            let headers = vec![("Host".to_string(), "127.0.0.1".to_string())];
            let req = Signed {
                method: "GET",
                path: "/",
                query: &q,
                headers: &headers,
                body: b"",
            };
            let canonical = format!(
                "GET\n/\n{}\nhost:127.0.0.1\n\nhost\n{UNSIGNED}",
                canonical_query(&req.query_pairs(), None)
            );
            let to_sign = format!(
                "AWS4-HMAC-SHA256\n{date}\n20261207/us-east-1/ec2/aws4_request\n{}",
                hex::encode(Sha256::digest(canonical.as_bytes()))
            );
            let mut k = hmac256(format!("AWS4{SECRET}").as_bytes(), b"20261207");
            for part in ["us-east-1", "ec2", "aws4_request"] {
                k = hmac256(&k, part.as_bytes());
            }
            q.push_str(&format!(
                "&X-Amz-Signature={}",
                hex::encode(hmac256(&k, to_sign.as_bytes()))
            ));
            (q, headers)
        };
        let (q, headers) = presigned("3600");
        let verify = |now: i64| {
            let req = Signed {
                method: "GET",
                path: "/",
                query: &q,
                headers: &headers,
                body: b"",
            };
            let params: Vec<(String, String)> = req.query_pairs();
            req.verify(&creds(), &params, now, &Nonces::default())
        };
        assert_eq!(verify(at + 3600), Verdict::Good);
        assert_eq!(
            verify(at + 3601),
            Verdict::Expired("Request has expired".into())
        );
        let (q, headers) = presigned("0");
        let req = Signed {
            method: "GET",
            path: "/",
            query: &q,
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            req.verify(&creds(), &req.query_pairs(), at, &Nonces::default()),
            Verdict::Malformed(_)
        ));
    }

    /// An ACS3 request (for tests): the signed headers as the current SDK sends them.
    fn acs3(body: &[u8], date: &str, nonce: &str, payload: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("host".to_string(), "127.0.0.1".to_string()),
            ("x-acs-action".to_string(), "DescribeRegions".to_string()),
            ("x-acs-content-sha256".to_string(), payload.to_string()),
            ("x-acs-date".to_string(), date.to_string()),
            ("x-acs-signature-nonce".to_string(), nonce.to_string()),
            ("x-acs-version".to_string(), "2014-05-26".to_string()),
        ];
        let signed =
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
        let req = Signed {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let canonical = format!(
            "POST\n/\n\n{}\n{signed}\n{payload}",
            req.canonical_headers(signed)
        );
        let to_sign = format!(
            "ACS3-HMAC-SHA256\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let signature = hex::encode(hmac256(SECRET.as_bytes(), to_sign.as_bytes()));
        headers.push((
            "Authorization".into(),
            format!("ACS3-HMAC-SHA256 Credential=AKIDEXAMPLE,SignedHeaders={signed},Signature={signature}"),
        ));
        headers
    }

    /// Bug: the body could be swapped under an ACS3 signature that covers
    /// `x-acs-content-sha256`; and x-acs-date / x-acs-signature-nonce were never checked.
    #[test]
    fn acs3_checks_the_body_the_date_and_the_nonce() {
        let date = "2026-12-07T12:00:00Z";
        let now = iso_time(date).unwrap();
        let body = b"RegionId=cn-hangzhou";
        let hash = hex::encode(Sha256::digest(body));
        let nonces = Nonces::default();
        let run = |h: &[(String, String)], body: &[u8], now: i64| {
            let req = Signed {
                method: "POST",
                path: "/",
                query: "",
                headers: h,
                body,
            };
            req.verify(&creds(), &[], now, &nonces)
        };
        let h = acs3(body, date, "n-1", &hash);
        assert!(matches!(
            run(&h, b"RegionId=cn-beijing", now),
            Verdict::BodyMismatch { .. }
        ));
        assert_eq!(run(&h, body, now), Verdict::Good);
        assert_eq!(run(&h, body, now + 60), Verdict::NonceUsed);
        let h = acs3(body, date, "n-2", &hash);
        assert!(matches!(
            run(&h, body, now + WINDOW_SECS + 1),
            Verdict::Expired(_)
        ));
        assert_eq!(run(&h, body, now - WINDOW_SECS), Verdict::Good);
        let h = acs3(body, "07/12/2026", "n-3", &hash);
        assert_eq!(run(&h, body, now), Verdict::BadTime("x-acs-date".into()));
        let mut h = acs3(body, date, "n-4", &hash);
        h.retain(|(k, _)| k != "x-acs-date");
        assert_eq!(
            run(&h, body, now),
            Verdict::MissingParameter("x-acs-date".into())
        );
        h = acs3(body, date, "n-4", &hash);
        h.retain(|(k, _)| k != "x-acs-signature-nonce");
        assert_eq!(
            run(&h, body, now),
            Verdict::MissingParameter("x-acs-signature-nonce".into())
        );
        // A nonce is spent only by a right signature, and its memory lasts the window.
        let h = acs3(body, date, "n-5", &hash);
        assert!(matches!(run(&h, b"x", now), Verdict::BodyMismatch { .. }));
        assert_eq!(run(&h, body, now), Verdict::Good);
        assert_eq!(run(&h, body, now + WINDOW_SECS), Verdict::NonceUsed);
    }

    #[test]
    fn times_parse_strictly() {
        assert_eq!(amz_time("19700101T000000Z"), Some(0));
        assert_eq!(iso_time("1970-01-02T00:00:01Z"), Some(86401));
        assert_eq!(
            iso_time("2016-02-29T12:46:24.123Z"),
            iso_time("2016-02-29T12:46:24Z")
        );
        for bad in [
            "2015-02-29T00:00:00Z",
            "2016-02-23 12:46:24Z",
            "2016-02-23T12:46:24",
            "2016-2-23T12:46:24Z",
            "2016-02-23T12:46:24.x1Z",
            "2016-02-23T24:00:00Z",
            "",
        ] {
            assert_eq!(iso_time(bad), None, "{bad}");
        }
        for bad in [
            "20150830T123600",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150830t123600Z",
        ] {
            assert_eq!(amz_time(bad), None, "{bad}");
        }
        let t = amz_time("20261207T235959Z").unwrap();
        assert_eq!(amz_format(t), "20261207T235959Z");
    }

    fn rpc_signed(params: &mut Vec<(String, String)>) {
        let secret = format!("{SECRET}&");
        params.retain(|(k, _)| k != "Signature");
        let mut sorted: Vec<_> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        sorted.sort();
        let sts = format!("GET&%2F&{}", encode(&sorted.join("&")));
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac1(secret.as_bytes(), sts.as_bytes()));
        params.push(("Signature".into(), sig));
    }

    /// Bug: the RPC signature's Timestamp and SignatureNonce were never checked.
    #[test]
    fn rpc_checks_timestamp_and_nonce() {
        let req = Signed {
            method: "GET",
            path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        let now = iso_time("2026-12-07T12:00:00Z").unwrap();
        let nonces = Nonces::default();
        let base = |ts: Option<&str>, nonce: Option<&str>| {
            let mut p = vec![
                ("Action".to_string(), "DescribeRegions".to_string()),
                ("AccessKeyId".to_string(), "AKIDEXAMPLE".to_string()),
                ("SignatureMethod".to_string(), "HMAC-SHA1".to_string()),
            ];
            if let Some(t) = ts {
                p.push(("Timestamp".into(), t.into()));
            }
            if let Some(n) = nonce {
                p.push(("SignatureNonce".into(), n.into()));
            }
            rpc_signed(&mut p);
            p
        };
        let ok = base(Some("2026-12-07T12:10:00Z"), Some("a"));
        assert_eq!(req.verify(&creds(), &ok, now, &nonces), Verdict::Good);
        assert_eq!(req.verify(&creds(), &ok, now, &nonces), Verdict::NonceUsed);
        let cases = [
            (
                base(None, Some("b")),
                Verdict::MissingParameter("Timestamp".into()),
            ),
            (
                base(Some("2026-12-07 12:00:00"), Some("b")),
                Verdict::BadTime("Timestamp".into()),
            ),
            (
                base(Some("2026-12-07T11:44:59Z"), Some("b")),
                Verdict::Expired("2026-12-07T11:44:59Z".into()),
            ),
            (
                base(Some("2026-12-07T12:15:01Z"), Some("b")),
                Verdict::Expired("2026-12-07T12:15:01Z".into()),
            ),
            (
                base(Some("2026-12-07T12:00:00Z"), None),
                Verdict::MissingParameter("SignatureNonce".into()),
            ),
        ];
        for (params, want) in cases {
            assert_eq!(req.verify(&creds(), &params, now, &nonces), want);
        }
        // The refused requests spent no nonce: "b" is still fresh.
        let fresh = base(Some("2026-12-07T11:45:00Z"), Some("b"));
        assert_eq!(req.verify(&creds(), &fresh, now, &nonces), Verdict::Good);
    }

    #[test]
    fn rpc_signature_round_trips() {
        let mut params = vec![
            ("Action".to_string(), "DescribeRegions".to_string()),
            ("AccessKeyId".to_string(), "AKIDEXAMPLE".to_string()),
            ("SignatureMethod".to_string(), "HMAC-SHA1".to_string()),
            ("Timestamp".to_string(), "2016-02-23T12:46:24Z".to_string()),
            ("SignatureNonce".to_string(), "3ee8c1b8".to_string()),
        ];
        let now = iso_time("2016-02-23T12:46:24Z").unwrap();
        let req = Signed {
            method: "GET",
            path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        rpc_signed(&mut params);
        assert_eq!(
            req.verify(&creds(), &params, now, &Nonces::default()),
            Verdict::Good
        );
        params[0].1 = "DescribeZones".into();
        assert!(
            matches!(req.verify(&creds(), &params, now, &Nonces::default()), Verdict::Mismatch(Some(s)) if s.starts_with("GET&%2F&AccessKeyId"))
        );
    }

    #[test]
    fn bad_credentials_files_say_where() {
        assert_eq!(Credentials::parse("a b c").unwrap_err().line, 1);
        assert!(Credentials::parse("").is_err());
        assert_eq!(encode("a b*~/"), "a%20b%2A~%2F");
    }
}
