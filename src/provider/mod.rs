//! Cloud providers: export import, native revoke requests, revoke semantics and responses.
//!
//! Each provider module ([`aws`], [`aliyun`]) turns its describe-call exports into the
//! [`State`] model, parses revoke requests in the forms users have at hand (query string,
//! URL, form body, JSON), applies them with the provider's exact semantics, and renders the
//! response the API would return. This module holds what they share: reading a request's
//! text into raw parameters, the API error value, the outcome of a revoke, and the
//! dispatch by shape (exports) and by `Action` (requests).

pub mod aliyun;
pub mod aws;
pub mod json;

use std::fmt;
use std::path::Path;

use serde_json::{json, Value};

use crate::model::{IcmpSel, Peer, Provider, Rule, State};

/// A request's parameters, decoded, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The value of the first parameter named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn from_query(query: &str) -> Params {
        Params(
            form_urlencoded::parse(query.trim().trim_start_matches('?').as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

/// A request as the user gave it, before any provider looked at it.
#[derive(Clone, Debug, PartialEq)]
pub enum RawRequest {
    /// Query-protocol parameters (from a query string, a URL or a form body).
    Query(Params),
    /// A JSON object.
    Json(serde_json::Value),
    /// A request that gives a parameter (query) or a key (JSON, in any object) more than
    /// once. Every provider rejects it with its error for a repeated parameter, the same
    /// way whichever parameter it is; `request` is what was read.
    Repeated {
        /// The request as read (query: every pair; JSON: the last value of a key).
        request: Box<RawRequest>,
        /// The first repeated parameter, or the JSON path of the first repeated key.
        name: String,
    },
}

impl RawRequest {
    /// Reads request text: a JSON object, a URL (`https://host/?…`), or a query string /
    /// form body (`Action=…&…`). Line breaks and surrounding blanks are ignored in query
    /// text, so a request may be written over several lines.
    pub fn parse(text: &str) -> Result<RawRequest, RequestError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(RequestError::Empty);
        }
        if let Some(wire) = Wire::split(t) {
            return wire.request();
        }
        if t.starts_with('{') {
            let parsed = json::parse(t).map_err(|e| RequestError::Json(e.to_string()))?;
            let request = RawRequest::Json(parsed.value);
            return Ok(match parsed.duplicates.into_iter().next() {
                Some(name) => RawRequest::Repeated {
                    request: Box::new(request),
                    name,
                },
                None => request,
            });
        }
        let joined: String = t.lines().map(str::trim).collect();
        // A URL's `#fragment` is never sent; a `#` inside a value is written `%23`.
        let joined = match joined.split_once('#') {
            Some((before, _)) => before.to_string(),
            None => joined,
        };
        let query = if joined.starts_with("http://") || joined.starts_with("https://") {
            match joined.split_once('?') {
                Some((_, q)) => q.to_string(),
                None => return Err(RequestError::NoQuery),
            }
        } else {
            joined
        };
        let params = Params::from_query(&query);
        if params.0.is_empty() || params.0.iter().all(|(_, v)| v.is_empty()) {
            return Err(RequestError::NotARequest);
        }
        Ok(RawRequest::of_params(params))
    }

    /// A query request, marked [`RawRequest::Repeated`] when a parameter name appears twice
    /// (every reader of parameters goes through here, so repeats are treated alike).
    fn of_params(params: Params) -> RawRequest {
        let mut seen = std::collections::HashSet::new();
        let repeated = params
            .0
            .iter()
            .map(|(k, _)| k.trim())
            .find(|k| !seen.insert(*k))
            .map(str::to_string);
        let request = RawRequest::Query(params);
        match repeated {
            Some(name) => RawRequest::Repeated {
                request: Box::new(request),
                name,
            },
            None => request,
        }
    }

    /// The request with `Action` set to `action` when it names none (the AWS CLI's
    /// `--cli-input-json` files and Alibaba's `x-acs-action` header leave it out). A request
    /// that names another action is an error.
    pub fn with_action(self, action: &str) -> Result<RawRequest, RequestError> {
        let action = action.trim();
        match self.action() {
            Some(given) if given == action => return Ok(self),
            Some(given) => {
                return Err(RequestError::ActionMismatch {
                    given: given.to_string(),
                    expected: action.to_string(),
                })
            }
            None => {}
        }
        Ok(match self {
            RawRequest::Query(mut p) => {
                p.0.retain(|(k, _)| k != "Action");
                p.0.insert(0, ("Action".into(), action.into()));
                RawRequest::Query(p)
            }
            RawRequest::Json(Value::Object(mut o)) => {
                o.insert("Action".into(), Value::String(action.into()));
                RawRequest::Json(Value::Object(o))
            }
            RawRequest::Json(_) => return Err(RequestError::NotARequest),
            RawRequest::Repeated { request, name } => RawRequest::Repeated {
                request: Box::new(request.with_action(action)?),
                name,
            },
        })
    }

    /// Reads a request as it arrives over HTTP: the query string's parameters, then a form
    /// body's (or a JSON body's members), then the action and version from Alibaba's
    /// `x-acs-action` / `x-acs-version` headers when the parameters name none. `sgsim serve`
    /// and `--request` text with header lines share this reader.
    pub fn from_http<'h>(
        query: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        body: &str,
    ) -> Result<RawRequest, RequestError> {
        let mut params = Params::from_query(query);
        let body = body.trim();
        let json = body.starts_with('{');
        let mut duplicate = None;
        if json {
            let parsed = json::parse(body).map_err(|e| RequestError::Json(e.to_string()))?;
            duplicate = parsed.duplicates.into_iter().next();
            let Value::Object(o) = parsed.value else {
                return Err(RequestError::NotARequest);
            };
            if params.0.is_empty() {
                let mut req = RawRequest::Json(Value::Object(o));
                for (name, value) in headers {
                    if name.eq_ignore_ascii_case("x-acs-action") {
                        req = req.with_action(value)?;
                    }
                }
                return Ok(match duplicate {
                    Some(name) => RawRequest::Repeated {
                        request: Box::new(req),
                        name,
                    },
                    None => req,
                });
            }
            for (k, v) in o {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                params.0.push((k, text));
            }
        } else if !body.is_empty() {
            params.0.extend(Params::from_query(body).0);
        }
        for (name, value) in headers {
            for (header, key) in [("x-acs-action", "Action"), ("x-acs-version", "Version")] {
                if name.eq_ignore_ascii_case(header) && params.get(key).is_none() {
                    params
                        .0
                        .insert(0, (key.to_string(), value.trim().to_string()));
                }
            }
        }
        if params.0.is_empty() {
            return Err(RequestError::NotARequest);
        }
        Ok(match duplicate {
            Some(name) => RawRequest::Repeated {
                request: Box::new(RawRequest::Query(params)),
                name,
            },
            None => RawRequest::of_params(params),
        })
    }

    /// The `Action` the request names, if any.
    pub fn action(&self) -> Option<&str> {
        match self {
            RawRequest::Query(p) => p.get("Action").map(str::trim),
            RawRequest::Json(v) => v.get("Action").and_then(|a| a.as_str()).map(str::trim),
            RawRequest::Repeated { request, .. } => request.action(),
        }
    }
}

/// Request text written as it goes over the wire: an optional request line
/// (`POST /?… HTTP/1.1`), header lines (`x-acs-action: RevokeSecurityGroup`), a blank line
/// or none, then a body (parameters or JSON).
struct Wire<'t> {
    query: &'t str,
    headers: Vec<(&'t str, &'t str)>,
    body: String,
}

impl<'t> Wire<'t> {
    /// Splits text that starts with a request line or a header line; `None` for plain
    /// request text.
    fn split(text: &'t str) -> Option<Wire<'t>> {
        let mut lines = text.lines().peekable();
        let mut query = "";
        let first = lines.peek().copied()?.trim();
        let request_line = first.split_whitespace().collect::<Vec<_>>();
        if let [method, target, version] = request_line[..] {
            if method.bytes().all(|b| b.is_ascii_uppercase()) && version.starts_with("HTTP/") {
                query = target.split_once('?').map_or("", |(_, q)| q);
                lines.next();
            }
        }
        let mut headers = Vec::new();
        while let Some(line) = lines.peek().copied() {
            let line = line.trim();
            if line.is_empty() {
                lines.next();
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                break;
            };
            let is_name =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !is_name || value.starts_with('/') {
                break;
            }
            headers.push((name, value.trim()));
            lines.next();
        }
        if query.is_empty() && headers.is_empty() {
            return None;
        }
        let rest: Vec<&str> = lines.collect();
        let body = if rest
            .first()
            .is_some_and(|l| l.trim_start().starts_with('{'))
        {
            rest.join("\n")
        } else {
            rest.iter().map(|l| l.trim()).collect()
        };
        Some(Wire {
            query,
            headers,
            body,
        })
    }

    fn request(self) -> Result<RawRequest, RequestError> {
        // A URL as the body (`https://host/?…`) keeps its query.
        let body = match self.body.split_once("://") {
            Some(("http" | "https", rest)) => match rest.split_once('?') {
                Some((_, q)) => q.to_string(),
                None => return Err(RequestError::NoQuery),
            },
            _ => self.body,
        };
        RawRequest::from_http(self.query, self.headers, &body)
    }
}

/// Request text that is not a request at all (the CLI's exit code 2). Malformed requests
/// that the cloud would answer with an error are [`ApiError`]s instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Nothing given.
    #[error("the request is empty")]
    Empty,
    /// Text that starts like JSON but is not.
    #[error("the request is not valid JSON: {0}")]
    Json(String),
    /// A URL without a query.
    #[error("the URL has no query string ('?Action=…')")]
    NoQuery,
    /// Neither JSON nor parameters.
    #[error("the request is neither JSON nor a query string of parameters")]
    NotARequest,
    /// No `Action`, or one sgsim does not simulate.
    #[error("unsupported or missing Action '{0}': expected RevokeSecurityGroupIngress/Egress (AWS) or RevokeSecurityGroup/RevokeSecurityGroupEgress (Alibaba)")]
    UnknownAction(String),
    /// `--action` names another action than the request does.
    #[error("the request's Action is '{given}' but --action says '{expected}'")]
    ActionMismatch {
        /// The request's own.
        given: String,
        /// The one asked for.
        expected: String,
    },
    /// The state has no groups of the request's provider.
    #[error("the request is for {request:?} but the state holds no {request:?} security groups")]
    ProviderMismatch {
        /// The request's provider.
        request: Provider,
    },
}

/// An error response of a cloud API: data, never a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The provider's error code, e.g. `InvalidPermission.NotFound`.
    pub code: String,
    /// The HTTP status the API answers with.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error response.
    pub fn new(code: &str, status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.to_string(),
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.code, self.status, self.message)
    }
}

/// How to render a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON (Alibaba's default; for AWS the shape boto3 returns).
    Json,
    /// XML (AWS's default).
    Xml,
}

/// The result of applying a revoke request to a state.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Whose API answered.
    pub provider: Provider,
    /// Success, or the error the API returns (then nothing changed).
    pub error: Option<ApiError>,
    /// HTTP status of the response.
    pub status: u16,
    /// The response body as JSON.
    pub json: serde_json::Value,
    /// The response body as XML.
    pub xml: String,
    /// The state after the revoke (equal to the input when nothing was revoked or on error).
    pub state: State,
    /// The rules the revoke removed, as they were.
    pub revoked: Vec<Rule>,
    /// Things the user should know (a bare revoke that missed a drop rule, …).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The body in the requested format, or the provider's default.
    pub fn body(&self, format: Option<Format>) -> String {
        let default = match self.provider {
            Provider::Aws => Format::Xml,
            _ => Format::Json,
        };
        match format.unwrap_or(default) {
            Format::Json => {
                serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| self.json.to_string())
            }
            Format::Xml => self.xml.clone(),
        }
    }
}

/// Which provider a request is for. `RevokeSecurityGroupIngress` is AWS's and
/// `RevokeSecurityGroup` Alibaba's; both clouds name their egress revoke
/// `RevokeSecurityGroupEgress`, so there the request's shape decides (`GroupId` /
/// `IpPermissions` are AWS's, `SecurityGroupId` / `RegionId` / `Permissions` Alibaba's), and
/// failing that the state's groups.
pub fn provider_of(state: &State, request: &RawRequest) -> Result<Provider, RequestError> {
    let action = request.action().unwrap_or("").to_string();
    match action.as_str() {
        "RevokeSecurityGroupIngress" => return Ok(Provider::Aws),
        "RevokeSecurityGroup" => return Ok(Provider::Aliyun),
        "RevokeSecurityGroupEgress" => {}
        _ => return Err(RequestError::UnknownAction(action)),
    }
    let request = match request {
        RawRequest::Repeated { request, .. } => request,
        other => other,
    };
    let has = |prefix: &str| match request {
        RawRequest::Repeated { .. } => false,
        RawRequest::Query(p) => p.0.iter().any(|(k, _)| k.starts_with(prefix)),
        RawRequest::Json(v) => v
            .as_object()
            .is_some_and(|o| o.keys().any(|k| k.starts_with(prefix))),
    };
    if has("SecurityGroupId") || has("RegionId") || has("Permissions") {
        return Ok(Provider::Aliyun);
    }
    if has("GroupId") || has("IpPermissions") {
        return Ok(Provider::Aws);
    }
    let providers: std::collections::BTreeSet<Provider> =
        state.groups.iter().map(|g| g.provider).collect();
    Ok(
        if providers.contains(&Provider::Aliyun) && !providers.contains(&Provider::Aws) {
            Provider::Aliyun
        } else {
            Provider::Aws
        },
    )
}

/// Applies a revoke request to a state with the semantics of its provider
/// (see [`provider_of`]).
pub fn revoke(state: &State, request: &RawRequest) -> Result<Outcome, RequestError> {
    match provider_of(state, request)? {
        Provider::Aliyun => aliyun::revoke(state, request),
        _ => aws::revoke(state, request),
    }
}

/// An export file that could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}: not JSON: {why}")]
    Json {
        /// The file.
        path: String,
        /// The parser's message.
        why: String,
    },
    /// The JSON is none of the shapes sgsim reads.
    #[error("{path}: not a recognised export; expected an sgsim snapshot, AWS describe-security-groups / describe-security-group-rules / describe-network-interfaces / describe-vpcs / describe-managed-prefix-lists / get-managed-prefix-list-entries output, or Alibaba DescribeSecurityGroupAttribute / DescribeSecurityGroups / DescribeNetworkInterfaces / DescribePrefixLists / DescribePrefixListAttributes output")]
    Unrecognised {
        /// The file.
        path: String,
    },
    /// A recognised export with a bad field.
    #[error("{path}: {field}: {why}")]
    Field {
        /// The file.
        path: String,
        /// JSON path of the field, e.g. `SecurityGroups[0].IpPermissions[1].FromPort`.
        field: String,
        /// What was wrong.
        why: String,
    },
    /// The merged state is inconsistent.
    #[error("{0}")]
    State(#[from] crate::model::StateError),
}

/// What importing a set of files produced.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    /// The merged state.
    pub state: State,
    /// Things noticed on the way (canonicalized CIDRs, …), each naming its file.
    pub warnings: Vec<String>,
}

/// Imports files (or every `*.json` file of a folder, in name order), each recognised by
/// its shape, and merges them into one state.
pub fn import_paths(paths: &[impl AsRef<Path>]) -> Result<Imported, ImportError> {
    let mut files = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .map_err(|source| ImportError::Io {
                    path: p.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| e.extension().is_some_and(|x| x == "json"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut docs = Vec::new();
    let mut warnings = Vec::new();
    for f in &files {
        let path = f.display().to_string();
        let bytes = std::fs::read(f).map_err(|source| ImportError::Io {
            path: path.clone(),
            source,
        })?;
        let (value, duplicates) = read_export(&path, &bytes)?;
        warnings.extend(duplicates);
        docs.push((path, value));
    }
    let mut imported = import_values(&docs)?;
    imported.warnings.splice(0..0, warnings);
    Ok(imported)
}

/// One export file's JSON (a UTF-8 byte-order mark accepted; UTF-16 and invalid UTF-8
/// named), and a warning for each key it gives twice in one object (the last value is
/// taken, as by the clouds' own CLIs).
fn read_export(path: &str, bytes: &[u8]) -> Result<(serde_json::Value, Vec<String>), ImportError> {
    let bad = |why: String| ImportError::Json {
        path: path.to_string(),
        why,
    };
    let text = json::text(bytes).map_err(|e| bad(e.to_string()))?;
    let parsed = json::parse(text).map_err(|e| bad(e.to_string()))?;
    let warnings = parsed
        .duplicates
        .iter()
        .map(|d| {
            format!("{path}: {d}: key given more than once in its object; the last value is used")
        })
        .collect();
    Ok((parsed.value, warnings))
}

/// Imports parsed JSON documents (`(name, value)`), each recognised by its shape.
pub fn import_values(docs: &[(String, serde_json::Value)]) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let mut aws_docs = Vec::new();
    let mut aliyun_docs = Vec::new();
    for (path, value) in docs {
        if is_snapshot(value) {
            let state: State =
                serde_json::from_value(value.clone()).map_err(|e| ImportError::Field {
                    path: path.clone(),
                    field: "(snapshot)".into(),
                    why: e.to_string(),
                })?;
            out.state.merge(state);
        } else if aws::recognises(value) {
            aws_docs.push((path.clone(), value.clone()));
        } else if aliyun::recognises(value) {
            aliyun_docs.push((path.clone(), value.clone()));
        } else {
            return Err(ImportError::Unrecognised { path: path.clone() });
        }
    }
    if !aws_docs.is_empty() {
        let mut got = aws::import(&aws_docs)?;
        out.warnings.append(&mut got.warnings);
        out.state.merge(got.state);
    }
    if !aliyun_docs.is_empty() {
        let mut got = aliyun::import(&aliyun_docs)?;
        out.warnings.append(&mut got.warnings);
        out.state.merge(got.state);
    }
    let normalized = out.state.normalize();
    if normalized > 0 {
        out.warnings.push(format!(
            "{normalized} rules read as the clouds do: AWS ports ignored for protocol -1 and \
             protocols without ports, an Alibaba local side of 0.0.0.0/0 as any local address \
             (IPv6 too)"
        ));
    }
    out.state.validate()?;
    Ok(out)
}

/// A rule as the `sgsim rules` contract prints it.
pub fn rule_json(state: &State, rule: &Rule) -> Value {
    let provider = state.group(&rule.group).map(|g| g.provider);
    let (from, to) = if rule.protocol.is_icmp() {
        let sel = IcmpSel::from_ranges(rule.src_ports, rule.dst_ports).unwrap_or_default();
        (sel.ty.map_or(-1, i64::from), sel.code.map_or(-1, i64::from))
    } else if rule.dst_ports.is_any() && !rule.protocol.has_ports() {
        (-1, -1)
    } else {
        (
            i64::from(rule.dst_ports.lo()),
            i64::from(rule.dst_ports.hi()),
        )
    };
    let peer = match &rule.remote {
        Peer::Cidr { cidr } => json!({ "cidr": cidr.to_string() }),
        Peer::Group { group_id, owner } => json!({ "group_id": group_id, "owner": owner }),
        Peer::PrefixList { prefix_list_id } => json!({ "prefix_list_id": prefix_list_id }),
    };
    let mut v = json!({
        "group_id": rule.group,
        "direction": rule.direction.as_str(),
        "rule_id": rule.id,
        "protocol": rule.protocol.to_string(),
        "from_port": from,
        "to_port": to,
        "peer": peer,
        "policy": rule.action.as_str(),
        "priority": rule.priority.0,
        "description": rule.description,
        "provider": provider,
    });
    if let Value::Object(o) = &mut v {
        if !rule.src_ports.is_any() && !rule.protocol.is_icmp() {
            o.insert("src_ports".into(), json!(rule.src_ports.to_string()));
        }
        if let Some(local) = &rule.local {
            o.insert("local".into(), json!(local.to_string()));
        }
        if provider == Some(Provider::Aws) {
            // AWS rules have no priority.
            o.insert("priority".into(), Value::Null);
        }
    }
    v
}

/// Escapes text for XML (and HTML) character data and attribute values. Characters XML
/// 1.0 forbids (C0 controls other than tab, line feed and carriage return; U+FFFE, U+FFFF)
/// become U+FFFD, so that every body parses; the other controls (tab, line feed, carriage
/// return, DEL, C1) become character references.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not characters in XML 1.0, not even as references: replaced.
            c if matches!(c as u32, 0..=0x8 | 0xb | 0xc | 0xe..=0x1f | 0xfffe | 0xffff) => {
                out.push('\u{fffd}')
            }
            // Allowed, but written as references so that no control or invisible format
            // character reaches a terminal that prints the body (tab, line feed and
            // carriage return survive).
            c if crate::term::is_unsafe(c) => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a JSON document is an sgsim snapshot (a serialized [`State`]).
pub fn is_snapshot(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(|o| {
        o.get("sgsim_snapshot").is_some() || (o.contains_key("groups") && o.contains_key("rules"))
    })
}

/// A request ID derived from the request's content: deterministic, shaped like the
/// provider's (a UUID, upper case for Alibaba, lower case for AWS).
pub fn request_id(seed: &str) -> String {
    // FNV-1a, twice with different offsets, for 128 bits.
    let hash = |offset: u64| {
        seed.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests;
