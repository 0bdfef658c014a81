//! The AWS provider suite: the export fixture in `tests/data/aws/state`, the revoke cases in
//! `tests/data/aws/cases` (format: `tests/data/aws/README.md`), round trips and the CLI.

// Test helpers: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sgsim::model::{Peer, State};
use sgsim::provider::aws::{self, Config};
use sgsim::provider::{self, ImportError, RawRequest, RequestError};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws")
}

fn fixture() -> provider::Imported {
    provider::import_paths(&[data().join("state")]).expect("fixture imports")
}

/// One case file.
struct Case {
    name: String,
    config: Config,
    request: String,
    expect: Vec<(String, String)>,
}

fn read_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let mut config = Config::default();
    let mut request = Vec::new();
    let mut expect = Vec::new();
    let mut section = "";
    for line in text.lines() {
        match section {
            "" if line.starts_with('#') || line.trim().is_empty() => {}
            "" if line.starts_with("config:") => {
                for flag in line["config:".len()..].split_whitespace() {
                    match flag {
                        "moto_compat" => config.moto_compat = true,
                        "lenient_all_protocol" => config.lenient_all_protocol = true,
                        "empty_is_error" => config.empty_is_error = true,
                        "unauthorized" => config.authorized = false,
                        other => panic!("{}: unknown config flag {other}", path.display()),
                    }
                }
            }
            _ if line == "request:" => section = "request",
            _ if line == "expect:" => section = "expect",
            "request" => request.push(line),
            "expect" if !line.trim().is_empty() => {
                let (k, v) = line.split_once(' ').unwrap_or((line, ""));
                expect.push((k.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    Case {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        config,
        request: request.join("\n"),
        expect,
    }
}

fn case_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    paths.sort();
    paths
}

/// Runs one case; returns the error code it produced (if any).
fn run_case(state: &State, case: &Case) -> Option<String> {
    let name = &case.name;
    let raw = RawRequest::parse(&case.request).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = aws::revoke_with(state, &raw, &case.config).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut saw_status = false;
    let mut saw_code = false;
    let mut expected_revoked: Vec<String> = Vec::new();
    for (k, v) in &case.expect {
        match k.as_str() {
            "status" => {
                saw_status = true;
                assert_eq!(out.status.to_string(), *v, "{name}: status; {}", out.xml);
            }
            "code" => {
                saw_code = true;
                let got = out.error.as_ref().map_or("-", |e| e.code.as_str());
                assert_eq!(got, v, "{name}: code; {:?}", out.error);
            }
            "revoked" => expected_revoked = v.split_whitespace().map(str::to_string).collect(),
            "unknown" => {
                let n = out
                    .json
                    .get("UnknownIpPermissions")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                assert_eq!(n.to_string(), *v, "{name}: unknown; {}", out.json);
            }
            "json" => {
                let (ptr, want) = v.split_once(' ').unwrap();
                let want: Value = serde_json::from_str(want).unwrap();
                assert_eq!(
                    out.json.pointer(ptr),
                    Some(&want),
                    "{name}: json {ptr}; {}",
                    out.json
                );
            }
            "xml" => assert!(
                out.xml.contains(v.as_str()),
                "{name}: xml lacks {v}; {}",
                out.xml
            ),
            "no-xml" => assert!(
                !out.xml.contains(v.as_str()),
                "{name}: xml has {v}; {}",
                out.xml
            ),
            "message" => {
                let msg = out.error.as_ref().map_or("", |e| e.message.as_str());
                assert!(
                    msg.contains(v.as_str()),
                    "{name}: message {msg:?} lacks {v:?}"
                );
            }
            "warning" => assert!(
                out.warnings.iter().any(|w| w.contains(v.as_str())),
                "{name}: no warning with {v:?}: {:?}",
                out.warnings
            ),
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
    assert!(
        saw_status && saw_code,
        "{name}: status and code are required"
    );
    let revoked: Vec<String> = out.revoked.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(revoked, expected_revoked, "{name}: revoked rules");
    match &out.error {
        Some(e) => {
            assert_eq!(
                &out.state, state,
                "{name}: an error must not change the state"
            );
            assert!(out.revoked.is_empty(), "{name}");
            assert_eq!(out.status, e.status, "{name}");
            assert!(
                out.xml.contains(&format!("<Code>{}</Code>", e.code)),
                "{name}"
            );
            assert!(out.xml.contains("<RequestID>"), "{name}");
            assert_eq!(
                out.json["Error"]["Code"],
                Value::from(e.code.as_str()),
                "{name}"
            );
            assert!(out.json["RequestId"].is_string(), "{name}");
            Some(e.code.clone())
        }
        None => {
            assert_eq!(out.status, 200, "{name}");
            let gone: BTreeSet<&str> = out.revoked.iter().map(|r| r.id.as_str()).collect();
            let rest: Vec<_> = state
                .rules
                .iter()
                .filter(|r| !gone.contains(r.id.as_str()))
                .cloned()
                .collect();
            assert_eq!(
                out.state.rules, rest,
                "{name}: state after = before - revoked"
            );
            assert_eq!(out.state.groups, state.groups, "{name}");
            assert_eq!(out.json["Return"], Value::Bool(true), "{name}");
            let listed: Vec<&str> = out.json["RevokedSecurityGroupRules"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["SecurityGroupRuleId"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(listed, revoked, "{name}: response lists the revoked rules");
            for id in &revoked {
                assert!(
                    out.xml.contains(&format!("<securityGroupRuleId>{id}<")),
                    "{name}"
                );
            }
            assert!(out
                .xml
                .contains("xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""));
            None
        }
    }
}

#[test]
fn revoke_cases() {
    let state = fixture().state;
    let paths = case_paths();
    assert!(paths.len() >= 70, "the suite lost cases");
    let mut codes = BTreeSet::new();
    let mut failed = Vec::new();
    for p in &paths {
        let case = read_case(p);
        match std::panic::catch_unwind(|| run_case(&state, &case)) {
            Ok(Some(code)) => {
                codes.insert(code);
            }
            Ok(None) => {}
            Err(_) => failed.push(case.name.clone()),
        }
    }
    assert!(failed.is_empty(), "failing cases: {failed:?}");
    // Every revoke error code of SEMANTICS.md 2.2.1 (the authorize-only ones aside) plus the
    // protocol-level UnknownParameter.
    for code in [
        "InvalidPermission.NotFound",
        "InvalidSecurityGroupRuleId.NotFound",
        "InvalidGroup.NotFound",
        "InvalidGroupId.Malformed",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "DryRunOperation",
        "UnauthorizedOperation",
        "UnknownParameter",
    ] {
        assert!(codes.contains(code), "no case produces {code}");
    }
}

#[test]
fn fixture_imports_every_export() {
    let got = fixture();
    let s = &got.state;
    assert_eq!(s.groups.len(), 6);
    assert_eq!(
        s.rules.len(),
        30,
        "16 with sgr- IDs, 14 synthesized, none twice"
    );
    assert_eq!(
        s.rules
            .iter()
            .filter(|r| r.id.as_str().starts_with("sgr-sim"))
            .count(),
        14
    );
    assert_eq!(s.enis.len(), 5);
    assert_eq!(s.vpcs.iter().filter(|v| v.is_default).count(), 1);
    let vpn = s.prefix_list(&"pl-0123abcd4567ef890".into()).unwrap();
    assert_eq!(
        (vpn.name.as_deref(), vpn.entries.len()),
        (Some("corp-vpn"), 2)
    );
    let s3 = s.prefix_list(&"pl-02468ace13579bdf0".into()).unwrap();
    assert_eq!(s3.entries.len(), 3, "ID taken from the file name");
    let web = s.eni(&"eni-0aaa1111bbbb2222c".into()).unwrap();
    assert_eq!(web.ips.len(), 3);
    assert_eq!(
        web.public_ips,
        ["54.210.1.10".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(got
        .warnings
        .iter()
        .any(|w| w.contains("security-groups.json")
            && w.contains("SecurityGroups[5].IpPermissions[1].IpRanges[0].CidrIp")
            && w.contains("10.60.0.0/16")));
    let partner = s
        .rules
        .iter()
        .find(|r| r.id.as_str() == "sgr-0aa0000000000000f")
        .unwrap();
    assert!(matches!(&partner.remote, Peer::Group { owner: Some(o), .. } if o == "210987654321"));
    assert_eq!(partner.description.as_deref(), Some("partner analytics"));
    assert_eq!(
        partner.attrs.get("GroupOwnerId").map(String::as_str),
        Some("123456789012")
    );
}

#[test]
fn rules_export_alone_and_in_any_order() {
    let dir = data().join("state");
    let read = |f: &str| -> (String, Value) {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        (f.to_string(), serde_json::from_str(&text).unwrap())
    };
    let alone = provider::import_values(&[read("security-group-rules.json")]).unwrap();
    assert_eq!(alone.state.rules.len(), 16);
    assert_eq!(alone.state.groups.len(), 2, "stub groups");
    let a = provider::import_values(&[
        read("security-groups.json"),
        read("security-group-rules.json"),
    ])
    .unwrap();
    let b = provider::import_values(&[
        read("security-group-rules.json"),
        read("security-groups.json"),
    ])
    .unwrap();
    let ids = |s: &State| {
        s.rules
            .iter()
            .map(|r| r.id.to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ids(&a.state), ids(&b.state));
    assert_eq!(a.state.rules.len(), 30);
}

/// The snapshot text the CLI writes (`snapshot_json` in `src/cli/revoke.rs`).
fn snapshot(state: &State) -> Value {
    let mut v = serde_json::to_value(state).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("sgsim_snapshot".into(), Value::from(1));
    v
}

#[test]
fn export_snapshot_import_round_trip() {
    let state = fixture().state;
    let text = serde_json::to_string_pretty(&snapshot(&state)).unwrap();
    let back = provider::import_values(&[(
        "snap.json".to_string(),
        serde_json::from_str(&text).unwrap(),
    )])
    .unwrap()
    .state;
    assert_eq!(back, state);
    // A revoke on the re-imported snapshot behaves as on the exports.
    let req = RawRequest::parse(
        "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&SecurityGroupRuleId.1=sgr-0aa00000000000005",
    )
    .unwrap();
    let a = aws::revoke(&state, &req).unwrap();
    let b = aws::revoke(&back, &req).unwrap();
    assert_eq!(a.state, b.state);
    assert_eq!(a.xml, b.xml, "request IDs are deterministic");
    // Snapshot plus the same exports again: nothing counted twice (the IDs agree).
    let mut docs = vec![(
        "snap.json".to_string(),
        serde_json::from_str(&text).unwrap(),
    )];
    for f in ["security-groups.json", "security-group-rules.json"] {
        let t = std::fs::read_to_string(data().join("state").join(f)).unwrap();
        docs.push((f.to_string(), serde_json::from_str(&t).unwrap()));
    }
    let both = provider::import_values(&docs).unwrap();
    assert_eq!(both.state.rules.len(), state.rules.len());
}

#[test]
fn revoked_state_round_trips_and_stays_revoked() {
    let state = fixture().state;
    let req = RawRequest::parse(
        "Action=RevokeSecurityGroupIngress&GroupName=websrv&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.IpRanges.1.CidrIp=205.192.0.0%2F16",
    )
    .unwrap();
    let once = aws::revoke(&state, &req).unwrap();
    assert_eq!(once.revoked.len(), 1);
    let snap = snapshot(&once.state);
    let back = provider::import_values(&[("s.json".to_string(), snap)])
        .unwrap()
        .state;
    let twice = aws::revoke(&back, &req).unwrap();
    assert!(twice.error.is_none(), "default VPC: a repeat is no error");
    assert!(twice.revoked.is_empty());
    assert_eq!(
        twice.json["UnknownIpPermissions"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn bad_input_is_never_a_panic() {
    // Truncated JSON request: not a request at all (exit 2).
    let text = std::fs::read_to_string(data().join("requests/truncated.json")).unwrap();
    assert!(matches!(
        RawRequest::parse(&text),
        Err(RequestError::Json(_))
    ));
    // A JSON request that is not an object.
    let state = fixture().state;
    assert!(aws::revoke(&state, &RawRequest::Json(serde_json::json!([1, 2]))).is_err());
    // No AWS groups in the state.
    let req = RawRequest::parse("Action=RevokeSecurityGroupIngress&GroupId=sg-1").unwrap();
    assert!(matches!(
        aws::revoke(&State::default(), &req),
        Err(RequestError::ProviderMismatch { .. })
    ));
    // Truncated export file.
    let dir = crate::scratch_root().join("aws");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("truncated-export.json");
    std::fs::write(
        &bad,
        r#"{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": ["#,
    )
    .unwrap();
    assert!(matches!(
        provider::import_paths(&[&bad]),
        Err(ImportError::Json { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
    // Garbage parameter values of every kind answer with an API error.
    for q in [
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=99999999999&IpPermissions.1.ToPort=1&IpPermissions.1.IpRanges.1.CidrIp=1.2.3.4%2F32",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.x.IpProtocol=tcp",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpRanges.1.CidrIp=%FF%FE",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=%C3%A9&IpPermissions.1.IpRanges.1.CidrIp=1.2.3.4%2F32",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2&IpPermissions.1.IpRanges.1.CidrIp=1.2.3.4",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=icmp&IpPermissions.1.FromPort=256&IpPermissions.1.ToPort=1&IpPermissions.1.IpRanges.1.CidrIp=1.2.3.4%2F32",
        "GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.Groups.1.Description=x&IpPermissions.1.IpProtocol=-1",
        "GroupId=sg-0a1b2c3d4e5f60789&SecurityGroupRuleId.4294967296=sgr-1",
        "GroupId=%E2%82%AC&IpPermissions.1.IpProtocol=-1",
        "GroupId=sg-0a1b2c3d4e5f60789&%E2%82%AC%E2%82%AC%E2%82%AC=1",
    ] {
        let req = RawRequest::parse(&format!("Action=RevokeSecurityGroupIngress&{q}")).unwrap();
        let out = aws::revoke(&state, &req).unwrap();
        assert!(out.error.is_some(), "{q}: {}", out.xml);
        assert_eq!(out.state, state);
    }
}

/// Runs the built binary.
fn sgsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn cli_exit_codes_and_out() {
    let state = data().join("state");
    let state = state.to_str().unwrap();
    let req = |f: &str| format!("@{}", data().join("requests").join(f).display());
    let dir = crate::scratch_root().join("aws-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("after.json");
    let out_path = out_file.to_str().unwrap();

    let ok = sgsim(&[
        "revoke",
        "--state",
        state,
        "--request",
        &req("revoke-ok.query"),
        "--format",
        "json",
        "--out",
        out_path,
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let body: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        body["RevokedSecurityGroupRules"][0]["SecurityGroupRuleId"],
        "sgr-0aa00000000000005"
    );
    let after = provider::import_paths(&[&out_file]).unwrap().state;
    assert_eq!(after.rules.len(), 29);

    std::fs::remove_file(&out_file).unwrap();
    let miss = sgsim(&[
        "revoke",
        "--state",
        state,
        "--request",
        &req("revoke-not-found.query"),
        "--out",
        out_path,
    ]);
    assert_eq!(miss.status.code(), Some(1));
    let xml = String::from_utf8_lossy(&miss.stdout);
    assert!(
        xml.contains("<Code>InvalidPermission.NotFound</Code>"),
        "{xml}"
    );
    assert!(!out_file.exists(), "--out is not written on an API error");

    let bad = sgsim(&[
        "revoke",
        "--state",
        state,
        "--request",
        &req("truncated.json"),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let rules = sgsim(&["rules", "--state", state]);
    assert_eq!(rules.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&rules.stdout).lines().count(), 30);
    std::fs::remove_dir_all(&dir).ok();
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "GroupId",
        "GroupName",
        "DryRun",
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
        "SecurityGroupRuleId.N",
        "IpPermissions.N.IpProtocol",
        "IpPermissions.N.FromPort",
        "IpPermissions.N.ToPort",
        "IpPermissions.N.IpRanges.M.CidrIp",
        "IpPermissions.N.IpRanges.M.Description",
        "IpPermissions.N.Ipv6Ranges.M.CidrIpv6",
        "IpPermissions.N.PrefixListIds.M.PrefixListId",
        "IpPermissions.N.Groups.M.GroupId",
        "IpPermissions.N.Groups.M.GroupName",
        "IpPermissions.N.Groups.M.UserId",
        "Bogus",
    ];
    const VALUES: &[&str] = &[
        "sg-0a1b2c3d4e5f60789",
        "sg-0d1e0000000000002",
        "sg-0d1e0000000000001",
        "sg-0c0ffee0c0ffee001",
        "sg-0999aaaa9999bbbb0",
        "foobar",
        "websrv",
        "default",
        "web-prod",
        "-1",
        "0",
        "22",
        "80",
        "443",
        "65535",
        "70000",
        "abc",
        "tcp",
        "TCP",
        "udp",
        "icmp",
        "icmpv6",
        "6",
        "50",
        "all",
        "10.0.0.0/8",
        "203.0.113.0/24",
        "205.192.0.0/16",
        "0.0.0.0/0",
        "::/0",
        "1.2.3.4/33",
        "true",
        "false",
        "",
        "office",
        "123456789012",
        "pl-0123abcd4567ef890",
        "sgr-0aa00000000000005",
        "sgr-0aa0000000000000c",
        "é",
    ];

    fn param() -> impl Strategy<Value = (String, String)> {
        (0..KEYS.len(), 0..3u8, 0..3u8, 0..VALUES.len()).prop_map(|(k, n, m, v)| {
            let key = KEYS[k]
                .replace(".N.", &format!(".{n}."))
                .replace(".M.", &format!(".{m}."))
                .replace(".N", &format!(".{n}"));
            (key, VALUES[v].to_string())
        })
    }

    proptest! {
        #[test]
        fn any_parameter_soup_answers_without_panicking(
            egress in any::<bool>(),
            params in proptest::collection::vec(param(), 0..12),
        ) {
            let state = fixture().state;
            let action = if egress { "RevokeSecurityGroupEgress" } else { "RevokeSecurityGroupIngress" };
            let mut all = vec![("Action".to_string(), action.to_string())];
            all.extend(params);
            let out = aws::revoke(&state, &RawRequest::Query(provider::Params(all))).unwrap();
            if out.error.is_some() {
                prop_assert_eq!(&out.state, &state);
                prop_assert!(out.revoked.is_empty());
            } else {
                prop_assert_eq!(out.state.rules.len() + out.revoked.len(), state.rules.len());
                let dir = if egress {
                    sgsim::model::Direction::Egress
                } else {
                    sgsim::model::Direction::Ingress
                };
                prop_assert!(out.revoked.iter().all(|r| r.direction == dir));
            }
            prop_assert!(!out.xml.is_empty());
        }
    }
}
