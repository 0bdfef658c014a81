//! Response bodies: EC2's XML and the JSON boto3 returns.

use serde_json::{json, Map, Value};

use super::revoke::{Done, Echo, Failed};
use super::{protocol_text, uses_ports};
use crate::model::{Direction, IcmpSel, Peer, Provider, Rule, State};
use crate::provider::Outcome;

const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Escapes text for XML content.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A small indenting XML writer.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn new() -> Xml {
        Xml {
            out: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_string(),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
    }

    fn open(&mut self, tag: &str) {
        self.indent();
        self.out.push_str(&format!("<{tag}>\n"));
        self.depth += 1;
    }

    fn open_ns(&mut self, tag: &str) {
        self.indent();
        self.out.push_str(&format!("<{tag} xmlns=\"{XMLNS}\">\n"));
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str(&format!("</{tag}>\n"));
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.indent();
        self.out
            .push_str(&format!("<{tag}>{}</{tag}>\n", esc(text)));
    }
}

/// `FromPort` / `ToPort` of a stored rule, as EC2 reports them (`-1` for "all").
fn rule_ports(r: &Rule) -> (i64, i64) {
    if !uses_ports(r.protocol) {
        (-1, -1)
    } else if r.protocol.is_icmp() {
        let sel = IcmpSel::from_ranges(r.src_ports, r.dst_ports).unwrap_or_default();
        (sel.ty.map_or(-1, i64::from), sel.code.map_or(-1, i64::from))
    } else {
        (i64::from(r.dst_ports.lo()), i64::from(r.dst_ports.hi()))
    }
}

/// A revoked rule as `RevokedSecurityGroupRule` (JSON member names).
fn revoked_json(r: &Rule) -> Value {
    let (from, to) = rule_ports(r);
    let mut o = Map::new();
    o.insert("SecurityGroupRuleId".into(), json!(r.id.as_str()));
    o.insert("GroupId".into(), json!(r.group.as_str()));
    o.insert("IsEgress".into(), json!(r.direction == Direction::Egress));
    o.insert("IpProtocol".into(), json!(protocol_text(r.protocol)));
    o.insert("FromPort".into(), json!(from));
    o.insert("ToPort".into(), json!(to));
    match &r.remote {
        Peer::Cidr { cidr } if cidr.family() == crate::model::Family::V4 => {
            o.insert("CidrIpv4".into(), json!(cidr.to_string()));
        }
        Peer::Cidr { cidr } => {
            o.insert("CidrIpv6".into(), json!(cidr.to_string()));
        }
        Peer::PrefixList { prefix_list_id } => {
            o.insert("PrefixListId".into(), json!(prefix_list_id.as_str()));
        }
        Peer::Group { group_id, .. } => {
            o.insert("ReferencedGroupId".into(), json!(group_id.as_str()));
        }
    }
    if let Some(d) = &r.description {
        o.insert("Description".into(), json!(d));
    }
    Value::Object(o)
}

/// An echoed permission as `IpPermission` (JSON member names).
fn echo_json(e: &Echo) -> Value {
    let mut o = Map::new();
    o.insert("IpProtocol".into(), json!(protocol_text(e.protocol)));
    if let Some((from, to)) = e.ports {
        o.insert("FromPort".into(), json!(from));
        o.insert("ToPort".into(), json!(to));
    }
    let with_desc = |mut m: Map<String, Value>, d: &Option<String>| {
        if let Some(d) = d {
            m.insert("Description".into(), json!(d));
        }
        Value::Object(m)
    };
    let one = |k: &str, v: String| {
        let mut m = Map::new();
        m.insert(k.to_string(), json!(v));
        m
    };
    if !e.groups.is_empty() {
        let pairs = e
            .groups
            .iter()
            .map(|g| {
                let mut m = one("GroupId", g.group_id.clone());
                if let Some(u) = &g.user_id {
                    m.insert("UserId".into(), json!(u));
                }
                with_desc(m, &g.description)
            })
            .collect();
        o.insert("UserIdGroupPairs".into(), Value::Array(pairs));
    }
    if !e.ipv4.is_empty() {
        let v = e
            .ipv4
            .iter()
            .map(|(c, d)| with_desc(one("CidrIp", c.to_string()), d))
            .collect();
        o.insert("IpRanges".into(), Value::Array(v));
    }
    if !e.ipv6.is_empty() {
        let v = e
            .ipv6
            .iter()
            .map(|(c, d)| with_desc(one("CidrIpv6", c.to_string()), d))
            .collect();
        o.insert("Ipv6Ranges".into(), Value::Array(v));
    }
    if !e.prefix_lists.is_empty() {
        let v = e
            .prefix_lists
            .iter()
            .map(|(id, d)| with_desc(one("PrefixListId", id.clone()), d))
            .collect();
        o.insert("PrefixListIds".into(), Value::Array(v));
    }
    Value::Object(o)
}

/// XML element names of the JSON members used above.
fn xml_name(json_name: &str) -> String {
    match json_name {
        "UserIdGroupPairs" => "groups".into(),
        "CidrIpv4" => "cidrIpv4".into(),
        "CidrIpv6" => "cidrIpv6".into(),
        other => {
            let mut c = other.chars();
            match c.next() {
                Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// Writes a JSON object as EC2 XML: lists become `<name><item>…</item></name>`.
fn write_value(x: &mut Xml, name: &str, v: &Value) {
    match v {
        Value::Object(o) => {
            x.open(name);
            for (k, v) in o {
                write_value(x, &xml_name(k), v);
            }
            x.close(name);
        }
        Value::Array(items) => {
            x.open(name);
            for item in items {
                write_value(x, "item", item);
            }
            x.close(name);
        }
        Value::String(s) => x.leaf(name, s),
        Value::Null => {}
        other => x.leaf(name, &other.to_string()),
    }
}

/// The outcome of a successful revoke.
pub(super) fn success(action: &str, id: &str, _before: &State, done: Done) -> Outcome {
    let unknown: Vec<Value> = done.unknown.iter().map(echo_json).collect();
    let revoked: Vec<Value> = done.revoked.iter().map(revoked_json).collect();
    let mut j = Map::new();
    j.insert("Return".into(), json!(true));
    if !unknown.is_empty() {
        j.insert("UnknownIpPermissions".into(), Value::Array(unknown.clone()));
    }
    if !revoked.is_empty() {
        j.insert(
            "RevokedSecurityGroupRules".into(),
            Value::Array(revoked.clone()),
        );
    }
    j.insert(
        "ResponseMetadata".into(),
        json!({"RequestId": id, "HTTPStatusCode": 200}),
    );
    let tag = format!("{action}Response");
    let mut x = Xml::new();
    x.open_ns(&tag);
    x.leaf("requestId", id);
    x.leaf("return", "true");
    if !unknown.is_empty() {
        write_value(&mut x, "unknownIpPermissionSet", &Value::Array(unknown));
    }
    if !revoked.is_empty() {
        write_value(
            &mut x,
            "revokedSecurityGroupRuleSet",
            &Value::Array(revoked),
        );
    }
    x.close(&tag);
    Outcome {
        provider: Provider::Aws,
        error: None,
        status: 200,
        json: Value::Object(j),
        xml: x.out,
        state: done.state,
        revoked: done.revoked,
        warnings: done.warnings,
    }
}

/// The outcome of a request EC2 answers with an error: nothing changes.
pub(super) fn failure(id: &str, state: &State, failed: Failed) -> Outcome {
    let e = &failed.error;
    let json = json!({
        "Error": {"Code": e.code, "Message": e.message},
        "RequestId": id,
        "ResponseMetadata": {"RequestId": id, "HTTPStatusCode": e.status},
    });
    let mut x = Xml::new();
    x.open("Response");
    x.open("Errors");
    x.open("Error");
    x.leaf("Code", &e.code);
    x.leaf("Message", &e.message);
    x.close("Error");
    x.close("Errors");
    x.leaf("RequestID", id);
    x.close("Response");
    Outcome {
        provider: Provider::Aws,
        status: e.status,
        error: Some(failed.error),
        json,
        xml: x.out,
        state: state.clone(),
        revoked: Vec::new(),
        warnings: failed.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        let mut x = Xml::new();
        write_value(
            &mut x,
            "set",
            &json!([{"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "1.2.3.4/32", "Description": "<x>"}],
                     "UserIdGroupPairs": [{"GroupId": "sg-1"}]}]),
        );
        assert!(x.out.contains("<ipProtocol>tcp</ipProtocol>"));
        assert!(x.out.contains("<ipRanges>"));
        assert!(x.out.contains("<description>&lt;x&gt;</description>"));
        assert!(x.out.contains("<groups>"));
        assert!(x.out.contains("<item>"));
    }
}
