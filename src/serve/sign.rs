//! Request signatures as the clients send them: AWS Signature Version 4 (in the
//! `Authorization` header or the query string), Alibaba's ACS3-HMAC-SHA256 (the current
//! SDK) and the RPC signature of the legacy SDK (`SignatureMethod=HMAC-SHA1` or
//! `HMAC-SHA256`, base64 in `Signature`). Without credentials every signature is accepted as
//! sent; with them, the server recomputes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

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

    /// Checks the signature against `credentials`. `params` are the request's parameters
    /// (query and form body).
    pub fn verify(&self, credentials: &Credentials, params: &[(String, String)]) -> Verdict {
        match self.style(params) {
            Style::SigV4Header => self.sigv4_header(credentials),
            Style::SigV4Query => self.sigv4_query(credentials),
            Style::Acs3 => self.acs3(credentials),
            Style::Rpc => self.rpc(credentials, params),
            Style::None => Verdict::Missing,
        }
    }

    fn sigv4_header(&self, creds: &Credentials) -> Verdict {
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
            Some(p) => p.to_string(),
            None => hex::encode(Sha256::digest(self.body)),
        };
        let query = canonical_query(&self.query_pairs(), None);
        self.sigv4_check(
            creds,
            credential,
            signed,
            signature,
            date,
            &query,
            &[payload],
        )
    }

    fn sigv4_query(&self, creds: &Credentials) -> Verdict {
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
        let payloads = [
            hex::encode(Sha256::digest(self.body)),
            "UNSIGNED-PAYLOAD".to_string(),
        ];
        self.sigv4_check(
            creds, credential, signed, signature, date, &query, &payloads,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn sigv4_check(
        &self,
        creds: &Credentials,
        credential: &str,
        signed: &str,
        signature: &str,
        date: &str,
        query: &str,
        payloads: &[String],
    ) -> Verdict {
        let mut scope = credential.splitn(2, '/');
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

    fn acs3(&self, creds: &Credentials) -> Verdict {
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
        let payload = match self.header("x-acs-content-sha256") {
            Some(p) => p.to_string(),
            None => hex::encode(Sha256::digest(self.body)),
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
        if hex::encode(hmac256(secret.as_bytes(), to_sign.as_bytes())) == *signature {
            Verdict::Good
        } else {
            Verdict::Mismatch(None)
        }
    }

    fn rpc(&self, creds: &Credentials, params: &[(String, String)]) -> Verdict {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(key), Some(signature)) = (get("AccessKeyId"), get("Signature")) else {
            return Verdict::Missing;
        };
        let Some(secret) = creds.secret(key) else {
            return Verdict::UnknownKey(key.to_string());
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
        if base64::engine::general_purpose::STANDARD.encode(mac) == signature {
            Verdict::Good
        } else {
            Verdict::Mismatch(Some(to_sign))
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
        assert_eq!(req.style(&[]), Style::SigV4Header);
        assert_eq!(req.verify(&creds(), &[]), Verdict::Good);
        req.query = "Action=ListUsers&Version=2010-05-09";
        assert_eq!(req.verify(&creds(), &[]), Verdict::Mismatch(None));
        let other = Credentials::parse("{\"AKIDOTHER\": \"x\"}").unwrap();
        assert_eq!(
            req.verify(&other, &[]),
            Verdict::UnknownKey("AKIDEXAMPLE".into())
        );
    }

    #[test]
    fn rpc_signature_round_trips() {
        let mut params = vec![
            ("Action".to_string(), "DescribeRegions".to_string()),
            ("AccessKeyId".to_string(), "AKIDEXAMPLE".to_string()),
            ("SignatureMethod".to_string(), "HMAC-SHA1".to_string()),
            ("Timestamp".to_string(), "2016-02-23T12:46:24Z".to_string()),
        ];
        let req = Signed {
            method: "GET",
            path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY&";
        let mut sorted: Vec<_> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        sorted.sort();
        let sts = format!("GET&%2F&{}", encode(&sorted.join("&")));
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac1(secret.as_bytes(), sts.as_bytes()));
        params.push(("Signature".into(), sig));
        assert_eq!(req.verify(&creds(), &params), Verdict::Good);
        params[0].1 = "DescribeZones".into();
        assert!(
            matches!(req.verify(&creds(), &params), Verdict::Mismatch(Some(s)) if s.starts_with("GET&%2F&AccessKeyId"))
        );
    }

    #[test]
    fn bad_credentials_files_say_where() {
        assert_eq!(Credentials::parse("a b c").unwrap_err().line, 1);
        assert!(Credentials::parse("").is_err());
        assert_eq!(encode("a b*~/"), "a%20b%2A~%2F");
    }
}
