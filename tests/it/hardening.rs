//! Issue 22's regressions: hostile and careless input never panics, never loses data
//! silently, never writes where it should not, never prints a raw control character.

use std::path::{Path, PathBuf};
use std::process::Command;

fn sgsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .env("CI", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
        .display()
        .to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = crate::scratch_root().join(format!("hard-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// No control character but line feeds.
fn clean(text: &str) -> bool {
    !text
        .chars()
        .any(|c| sgsim::term::is_control(c) && c != '\n')
}

#[test]
fn numeric_flags_at_2_64_or_10_12_exit_2_without_panic() {
    let state = data("aws/state");
    let out = scratch("numeric").join("x.pcap");
    let out = out.to_str().unwrap();
    let max = "18446744073709551615";
    let cases: Vec<Vec<&str>> = vec![
        vec!["synth", "--state", &state, "--out", out, "--packets", max],
        vec![
            "synth",
            "--state",
            &state,
            "--out",
            out,
            "--packets",
            "1000000000000",
        ],
        vec![
            "synth",
            "--state",
            &state,
            "--out",
            out,
            "--background",
            "5",
        ],
        vec![
            "synth",
            "--state",
            &state,
            "--out",
            out,
            "--background",
            "NaN",
        ],
        vec!["synth", "--state", &state, "--out", out, "--start", max],
        vec![
            "whatif",
            "--state",
            &state,
            "--request",
            "x",
            "--synthetic",
            max,
        ],
        vec!["bench", "--rules", max],
        vec!["bench", "--rules", "1000000000000"],
        vec!["bench", "--packets", max],
        vec!["bench", "--parallel-batch", max],
        vec!["classbench", "--filters", "x", "--packets", max],
        vec!["eval", "--state", &state, "--traffic", "x", "--chunk", "0"],
        vec![
            "eval",
            "--state",
            &state,
            "--traffic",
            "x",
            "--max-flows",
            max,
        ],
    ];
    for args in cases {
        let (code, _, err) = sgsim(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn synth_streams_to_an_atomic_output_and_refuses_a_directory() {
    let dir = scratch("synth");
    let state = data("aws/state");
    let (code, _, err) = sgsim(&["synth", "--state", &state, "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is a directory"), "{err}");
    let out = dir.join("s.pcap");
    let (code, _, err) = sgsim(&[
        "synth",
        "--state",
        &state,
        "--out",
        out.to_str().unwrap(),
        "--packets",
        "3000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("wrote 3000 packets"), "{err}");
    let (code, out, err) = sgsim(&["packets", "--traffic", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3000);
    // Nothing but the capture is left in the directory.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn repeated_parameters_and_duplicate_json_keys_are_rejected_alike() {
    let aws = data("aws/state");
    let base = "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&SecurityGroupRuleId.1=sgr-0000000000000000a";
    for request in [
        format!("{base}&GroupId=sg-0a1b2c3d4e5f60789"),
        format!("{base}&Action=RevokeSecurityGroupEgress"),
        r#"{"Action": "RevokeSecurityGroupIngress", "GroupId": "sg-0a1b2c3d4e5f60789", "GroupId": "sg-2", "SecurityGroupRuleIds": ["sgr-1"]}"#.to_string(),
    ] {
        let (code, out, err) = sgsim(&["revoke", "--state", &aws, "--request", &request]);
        assert_eq!(code, 1, "{request}: {err}");
        assert!(out.contains("InvalidParameterValue") && out.contains("more than once"), "{out}");
    }
    let ali = data("aliyun/export");
    for request in [
        "Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&SecurityGroupId=sg-x&SecurityGroupRuleId.1=sgr-1",
        r#"{"Action": "RevokeSecurityGroup", "RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp1web", "SecurityGroupId": "sg-x"}"#,
        r#"Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&Permissions=[{"IpProtocol":"TCP","PortRange":"22/22","PortRange":"80/80","SourceCidrIp":"1.2.3.4/32","SecurityGroupId":"x"}]"#,
    ] {
        let (code, out, err) = sgsim(&["revoke", "--state", &ali, "--request", request]);
        assert_eq!(code, 1, "{request}: {err}");
        assert!(out.contains("\"InvalidParameter\""), "{out}");
        assert!(
            out.contains("SecurityGroupId is given") || out.contains("Permissions[0].PortRange is given"),
            "{out}"
        );
    }
    // A URL fragment is not part of the last value.
    let url = format!("https://ec2.amazonaws.com/?{base}");
    let plain = sgsim(&["revoke", "--state", &aws, "--request", &url]);
    let with_fragment = sgsim(&[
        "revoke",
        "--state",
        &aws,
        "--request",
        &format!("{url}#top"),
    ]);
    assert_eq!(plain.0, with_fragment.0);
    assert!(!with_fragment.1.contains("#top"), "{}", with_fragment.1);
}

#[test]
fn terminal_escape_injection_and_xml_forbidden_characters() {
    let aws = data("aws/state");
    // ESC [2J (clear screen), BEL, CR, NUL and a C1 CSI in a value the API echoes.
    let request = "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8&IpPermissions.1.IpRanges.1.Description=a%1B%5B2J%07%0D%00%C2%9Bb";
    let (_, out, err) = sgsim(&["revoke", "--state", &aws, "--request", request]);
    assert!(clean(&out) && clean(&err), "{out:?} {err:?}");
    assert!(!out.contains("&#x0;") && !out.contains("&#x1B;"), "{out}");
    let (_, out, err) = sgsim(&["whatif", "--state", &aws, "--request", request]);
    assert!(clean(&out) && clean(&err), "{out:?} {err:?}");
    let bad = "Action=RevokeSecurityGroupIngress&GroupId=sg-%1B%5D0%3Bpwned%07&SecurityGroupRuleId.1=sgr-1";
    for cmd in ["revoke", "whatif"] {
        let (_, out, err) = sgsim(&[cmd, "--state", &aws, "--request", bad]);
        assert!(clean(&out) && clean(&err), "{cmd}: {out:?} {err:?}");
    }
    // The XML body echoes the group ID: ESC and BEL, which XML 1.0 cannot carry even as
    // references, become U+FFFD (the body parses); the text report shows them escaped.
    let (code, out, _) = sgsim(&["revoke", "--state", &aws, "--request", bad]);
    assert_eq!(code, 1);
    assert!(out.contains("sg-\u{fffd}]0;pwned\u{fffd}"), "{out}");
    assert!(!out.contains("&#x1B;") && !out.contains("&#x7;"), "{out}");
    let (_, out, _) = sgsim(&["whatif", "--state", &aws, "--request", bad]);
    assert!(out.contains("sg-\\x1b]0;pwned\\x07"), "{out}");
}

#[test]
fn exports_accept_a_bom_and_name_utf16_and_invalid_utf8() {
    let dir = scratch("exports");
    let src = std::fs::read(data("aws/state/security-groups.json")).unwrap();
    let bom = dir.join("bom.json");
    let mut with_bom = b"\xef\xbb\xbf".to_vec();
    with_bom.extend_from_slice(&src);
    std::fs::write(&bom, &with_bom).unwrap();
    let (code, _, err) = sgsim(&["rules", "--state", bom.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let utf16 = dir.join("utf16.json");
    let mut wide = vec![0xff, 0xfe];
    for b in &src {
        wide.extend_from_slice(&[*b, 0]);
    }
    std::fs::write(&utf16, &wide).unwrap();
    let (code, _, err) = sgsim(&["rules", "--state", utf16.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("utf16.json") && err.contains("UTF-16"),
        "{err}"
    );
    let invalid = dir.join("invalid.json");
    let mut broken = src.clone();
    broken[40] = 0xff;
    std::fs::write(&invalid, &broken).unwrap();
    let (code, _, err) = sgsim(&["rules", "--state", invalid.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid UTF-8 at byte offset 40"), "{err}");
    let dup = dir.join("dup.json");
    let text = String::from_utf8(src).unwrap();
    let doubled = text.replacen('{', "{\"SecurityGroups\": [],", 1);
    std::fs::write(&dup, doubled).unwrap();
    let (code, _, err) = sgsim(&["rules", "--state", dup.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("SecurityGroups: key given more than once"),
        "{err}"
    );
}

#[test]
fn terminal_escape_injection_through_a_rule_description() {
    // Anyone with authorize rights can set a description that clears the screen and forges
    // a line of the report.
    let dir = scratch("evil");
    for entry in std::fs::read_dir(data("aws/state")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let rules = dir.join("security-group-rules.json");
    let mut export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rules).unwrap()).unwrap();
    let evil = "\u{1b}[2J\u{7}\r\nRules revoked: 0\u{9b}\u{7f}";
    for r in export["SecurityGroupRules"].as_array_mut().unwrap() {
        if r["SecurityGroupRuleId"] == "sgr-0aa00000000000001" {
            r["Description"] = evil.into();
        }
    }
    std::fs::write(&rules, export.to_string()).unwrap();
    let state = dir.to_str().unwrap();
    let request = "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&SecurityGroupRuleId.1=sgr-0aa00000000000001";
    let (code, out, err) = sgsim(&["whatif", "--state", state, "--request", request]);
    assert_eq!(code, 0, "{err}");
    assert!(clean(&out) && clean(&err), "{out:?}");
    assert!(
        out.contains("\\x1b[2J\\x07\\r\\nRules revoked: 0\\u{9b}\\x7f"),
        "{out}"
    );
    assert_eq!(
        out.matches("Rules revoked:").count(),
        2,
        "one real, one escaped"
    );
    // JSON on stdout keeps the value (DEL and C1 as \u escapes) and stays clean.
    for args in [
        vec![
            "whatif",
            "--state",
            state,
            "--request",
            request,
            "--output",
            "json",
        ],
        vec!["rules", "--state", state],
    ] {
        let (code, out, err) = sgsim(&args);
        assert_eq!(code, 0, "{err}");
        assert!(clean(&out), "{args:?}: {out:?}");
        let found = out.lines().chain([out.as_str()]).any(|text| {
            serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
                v.to_string()
                    .contains(&serde_json::json!(evil).to_string()[1..20])
            })
        });
        assert!(found, "{args:?}: the description survives as JSON");
    }
}
