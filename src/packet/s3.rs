//! `s3://bucket/prefix` inputs, read in place through `object_store` (feature `s3`).
//!
//! Credentials, region and endpoint come from the environment as the AWS CLI reads it
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`); what the environment
//! leaves unset is taken from the shared files (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`; `AWS_CONFIG_FILE`, else `~/.aws/config`) for the profile
//! `AWS_PROFILE` (else `default`). Without any key, `object_store` asks the instance or
//! container metadata service. An `http://` endpoint (a local S3-compatible server) is
//! allowed as given.
//!
//! The prefix is listed folder by folder, so partitions of the S3 delivery layouts that
//! lie outside the window are not even listed ([`super::input`]). Objects are read in
//! ranges of [`RANGE`] bytes (text and gzip as a stream, Parquet by the ranges its reader
//! asks for), so memory does not grow with the object.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::file::reader::{ChunkReader, Length};

use super::input::{partition_span, Location, Part, Window};
use super::{parquet as pq, Source, TrafficError};

/// Bytes fetched by one ranged GET when streaming an object.
pub const RANGE: u64 = 8 << 20;

/// A bucket, and the runtime its requests run on.
struct Bucket {
    store: AmazonS3,
    name: String,
    runtime: tokio::runtime::Runtime,
}

/// One object of a listing.
#[derive(Clone)]
pub struct Object {
    bucket: Arc<Bucket>,
    key: Key,
    size: u64,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket.name, self.key)
    }
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Object {
    /// The object's URL, `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket.name, self.key)
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its bucket's URL, `s3://bucket`.
    pub fn bucket_url(&self) -> String {
        format!("s3://{}", self.bucket.name)
    }

    /// The store its bucket is read through (the `object_store` release DataFusion
    /// reads, so a DataFusion session can scan the object in place).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(self.bucket.store.clone())
    }

    /// Whether the object is Parquet (starts with its magic bytes; one ranged GET).
    pub fn is_parquet(&self) -> std::io::Result<bool> {
        Ok(self.size >= 8 && self.range(0, 4)?.as_ref() == pq::MAGIC)
    }

    fn range(&self, start: u64, end: u64) -> std::io::Result<Bytes> {
        let b = &self.bucket;
        b.runtime
            .block_on(b.store.get_range(&self.key, start..end.min(self.size)))
            .map_err(io)
    }
}

/// Settings of one INI section of an AWS shared file.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

/// Settings from the shared credentials and config files for the current profile, as
/// `(object_store key, value)` pairs.
fn profile_settings() -> Vec<(&'static str, String)> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |var: &str, rel: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(rel)))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let credentials = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config = file("AWS_CONFIG_FILE", ".aws/config");
    let config_section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let mut out = Vec::new();
    for (k, v) in ini_section(&credentials, &profile)
        .into_iter()
        .chain(ini_section(&config, &config_section))
    {
        let key = match k.as_str() {
            "aws_access_key_id" => "aws_access_key_id",
            "aws_secret_access_key" => "aws_secret_access_key",
            "aws_session_token" => "aws_session_token",
            "region" => "aws_region",
            "endpoint_url" => "aws_endpoint",
            _ => continue,
        };
        if !out.iter().any(|(o, _): &(&str, String)| *o == key) {
            out.push((key, v));
        }
    }
    out
}

fn bucket(name: &str) -> Result<Arc<Bucket>, TrafficError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(name);
    let env = |k: &str| std::env::var_os(k).is_some();
    for (key, value) in profile_settings() {
        let set = match key {
            "aws_access_key_id" => env("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key" => env("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token" => env("AWS_SESSION_TOKEN"),
            "aws_region" => env("AWS_REGION") || env("AWS_DEFAULT_REGION"),
            _ => env("AWS_ENDPOINT_URL") || env("AWS_ENDPOINT"),
        };
        if !set {
            if let Ok(k) = key.parse() {
                builder = builder.with_config(k, value);
            }
        }
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    let store = builder
        .build()
        .map_err(|e| TrafficError::NotTraffic(format!("S3 settings: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(Arc::new(Bucket {
        store,
        name: name.to_string(),
        runtime,
    }))
}

/// The objects under `bucket/prefix` (`url` without `s3://`), folders whose partition
/// lies outside `window` left unlisted.
pub fn list(url: &str, window: Window) -> Result<Vec<Part>, TrafficError> {
    let (name, prefix) = url.split_once('/').unwrap_or((url, ""));
    let named = |e: TrafficError| TrafficError::File {
        file: format!("s3://{url}"),
        error: Box::new(e),
    };
    if name.is_empty() {
        return Err(named(TrafficError::NotTraffic(
            "an s3:// URL names a bucket: s3://BUCKET/PREFIX".into(),
        )));
    }
    let b = bucket(name).map_err(named)?;
    let mut parts = Vec::new();
    let mut folders = vec![Key::from(prefix.trim_end_matches('/'))];
    // A prefix that names one object is read as that object.
    if !prefix.is_empty() && !prefix.ends_with('/') {
        if let Ok(meta) = b.runtime.block_on(b.store.head(&Key::from(prefix))) {
            folders.clear();
            parts.push(part(&b, meta.location, meta.size));
        }
    }
    while let Some(folder) = folders.pop() {
        let at = (!folder.as_ref().is_empty()).then_some(&folder);
        let listing = b
            .runtime
            .block_on(b.store.list_with_delimiter(at))
            .map_err(|e| named(TrafficError::Io(io(e))))?;
        for p in listing.common_prefixes {
            let keep = partition_span(p.as_ref()).is_none_or(|(s, e)| window.keeps_partition(s, e));
            let hidden = p.filename().is_some_and(|f| f.starts_with('.'));
            if keep && !hidden {
                folders.push(p);
            }
        }
        for o in listing.objects {
            if o.location.filename().is_some_and(|f| f.starts_with('.')) {
                continue;
            }
            parts.push(part(&b, o.location, o.size));
        }
    }
    Ok(parts)
}

fn part(b: &Arc<Bucket>, key: Key, size: u64) -> Part {
    Part {
        name: format!("s3://{}/{key}", b.name),
        span: partition_span(key.as_ref()),
        len: size,
        location: Location::Object(Object {
            bucket: b.clone(),
            key,
            size,
        }),
    }
}

/// An object read as a stream, a range at a time.
struct Stream {
    object: Object,
    at: u64,
    buf: Bytes,
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.at >= self.object.size {
                return Ok(0);
            }
            let end = self.at.saturating_add(RANGE);
            self.buf = self.object.range(self.at, end)?;
            self.at += self.buf.len() as u64;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

/// An object as the Parquet reader reads it: ranges on demand.
#[derive(Clone)]
struct Ranges(Object);

impl Length for Ranges {
    fn len(&self) -> u64 {
        self.0.size
    }
}

impl ChunkReader for Ranges {
    type T = Stream;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Stream> {
        Ok(Stream {
            object: self.0.clone(),
            at: start,
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.0
            .range(start, start.saturating_add(length as u64))
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

/// Opens an object: Parquet by ranges, anything else as a stream.
pub fn open(object: &Object) -> Result<Source<'static>, TrafficError> {
    if object.is_parquet()? {
        let ranges = Ranges(object.clone());
        return Ok(Source::Parquet(pq::Reader::new(
            move || Ok(ranges.clone()),
            object.size,
        )?));
    }
    Source::open(Stream {
        object: object.clone(),
        at: 0,
        buf: Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_sections_are_read_by_profile() {
        let text = "[default]\naws_access_key_id = A\n# comment\n[profile dev]\nregion = eu-west-1\n[dev]\naws_secret_access_key=S\n";
        assert_eq!(
            ini_section(text, "default"),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(
            ini_section(text, "profile dev"),
            vec![("region".into(), "eu-west-1".into())]
        );
        assert_eq!(
            ini_section(text, "dev"),
            vec![("aws_secret_access_key".into(), "S".into())]
        );
    }
}
