//! Response bodies: EC2's XML and the JSON boto3 returns.

use serde_json::{json, Map, Value};

use super::revoke::{Done, Echo, Failed};
use super::values::{protocol_text, uses_ports};
use crate::model::{Direction, Family, IcmpSel, Peer, Provider, Rule, State};
use crate::provider::Outcome;

const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

use crate::provider::xml_escape as esc;

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

/// A response value with its members in EC2's order; rendered as boto3's JSON or EC2's XML.
enum Node {
    Text(String),
    Int(i64),
    Bool(bool),
    List(Vec<Node>),
    /// Members as (JSON name, XML name, value).
    Obj(Vec<(&'static str, &'static str, Node)>),
}

impl Node {
    fn json(&self) -> Value {
        match self {
            Node::Text(t) => json!(t),
            Node::Int(n) => json!(n),
            Node::Bool(b) => json!(b),
            Node::List(items) => Value::Array(items.iter().map(Node::json).collect()),
            Node::Obj(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, _, v)| (k.to_string(), v.json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    fn xml(&self, x: &mut Xml, name: &str) {
        match self {
            Node::Text(t) => x.leaf(name, t),
            Node::Int(n) => x.leaf(name, &n.to_string()),
            Node::Bool(b) => x.leaf(name, if *b { "true" } else { "false" }),
            Node::List(items) => {
                x.open(name);
                for item in items {
                    item.xml(x, "item");
                }
                x.close(name);
            }
            Node::Obj(members) => {
                x.open(name);
                for (_, tag, v) in members {
                    v.xml(x, tag);
                }
                x.close(name);
            }
        }
    }
}

/// A revoked rule as `RevokedSecurityGroupRule`.
fn revoked_node(r: &Rule) -> Node {
    let (from, to) = rule_ports(r);
    let mut m = vec![
        (
            "SecurityGroupRuleId",
            "securityGroupRuleId",
            Node::Text(r.id.to_string()),
        ),
        ("GroupId", "groupId", Node::Text(r.group.to_string())),
        (
            "IsEgress",
            "isEgress",
            Node::Bool(r.direction == Direction::Egress),
        ),
        (
            "IpProtocol",
            "ipProtocol",
            Node::Text(protocol_text(r.protocol)),
        ),
        ("FromPort", "fromPort", Node::Int(from)),
        ("ToPort", "toPort", Node::Int(to)),
    ];
    m.push(match &r.remote {
        Peer::Cidr { cidr } if cidr.family() == Family::V4 => {
            ("CidrIpv4", "cidrIpv4", Node::Text(cidr.to_string()))
        }
        Peer::Cidr { cidr } => ("CidrIpv6", "cidrIpv6", Node::Text(cidr.to_string())),
        Peer::PrefixList { prefix_list_id } => (
            "PrefixListId",
            "prefixListId",
            Node::Text(prefix_list_id.to_string()),
        ),
        Peer::Group { group_id, .. } => (
            "ReferencedGroupId",
            "referencedGroupId",
            Node::Text(group_id.to_string()),
        ),
    });
    if let Some(d) = &r.description {
        m.push(("Description", "description", Node::Text(d.clone())));
    }
    Node::Obj(m)
}

/// An entry (`IpRange`, `UserIdGroupPair`, …): its members, then the description if any.
fn entry(
    mut members: Vec<(&'static str, &'static str, Node)>,
    description: &Option<String>,
) -> Node {
    if let Some(d) = description {
        members.push(("Description", "description", Node::Text(d.clone())));
    }
    Node::Obj(members)
}

/// An echoed permission as `IpPermission`, in EC2's element order.
fn echo_node(e: &Echo) -> Node {
    let mut m = vec![(
        "IpProtocol",
        "ipProtocol",
        Node::Text(protocol_text(e.protocol)),
    )];
    if let Some((from, to)) = e.ports {
        m.push(("FromPort", "fromPort", Node::Int(from)));
        m.push(("ToPort", "toPort", Node::Int(to)));
    }
    if !e.groups.is_empty() {
        let pairs = e
            .groups
            .iter()
            .map(|g| {
                let mut members = Vec::new();
                if let Some(u) = &g.user_id {
                    members.push(("UserId", "userId", Node::Text(u.clone())));
                }
                members.push(("GroupId", "groupId", Node::Text(g.group_id.clone())));
                entry(members, &g.description)
            })
            .collect();
        m.push(("UserIdGroupPairs", "groups", Node::List(pairs)));
    }
    if !e.ipv4.is_empty() {
        let v = e
            .ipv4
            .iter()
            .map(|(c, d)| entry(vec![("CidrIp", "cidrIp", Node::Text(c.to_string()))], d))
            .collect();
        m.push(("IpRanges", "ipRanges", Node::List(v)));
    }
    if !e.ipv6.is_empty() {
        let v = e
            .ipv6
            .iter()
            .map(|(c, d)| entry(vec![("CidrIpv6", "cidrIpv6", Node::Text(c.to_string()))], d))
            .collect();
        m.push(("Ipv6Ranges", "ipv6Ranges", Node::List(v)));
    }
    if !e.prefix_lists.is_empty() {
        let v = e
            .prefix_lists
            .iter()
            .map(|(id, d)| {
                entry(
                    vec![("PrefixListId", "prefixListId", Node::Text(id.clone()))],
                    d,
                )
            })
            .collect();
        m.push(("PrefixListIds", "prefixListIds", Node::List(v)));
    }
    Node::Obj(m)
}

/// The outcome of a successful revoke.
pub(super) fn success(action: &str, id: &str, done: Done) -> Outcome {
    let unknown = Node::List(done.unknown.iter().map(echo_node).collect());
    let revoked = Node::List(done.revoked.iter().map(revoked_node).collect());
    let mut j = Map::new();
    j.insert("Return".into(), json!(true));
    if !done.unknown.is_empty() {
        j.insert("UnknownIpPermissions".into(), unknown.json());
    }
    if !done.revoked.is_empty() {
        j.insert("RevokedSecurityGroupRules".into(), revoked.json());
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
    if !done.unknown.is_empty() {
        unknown.xml(&mut x, "unknownIpPermissionSet");
    }
    if !done.revoked.is_empty() {
        revoked.xml(&mut x, "revokedSecurityGroupRuleSet");
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
        let e = Echo {
            protocol: crate::model::Protocol::TCP,
            ports: Some((22, 22)),
            ipv4: vec![("1.2.3.4/32".parse().unwrap(), Some("<x>".to_string()))],
            ipv6: Vec::new(),
            prefix_lists: Vec::new(),
            groups: vec![super::super::revoke::EchoPair {
                group_id: "sg-1".into(),
                user_id: None,
                description: None,
            }],
        };
        Node::List(vec![echo_node(&e)]).xml(&mut x, "set");
        assert!(x.out.contains("<ipProtocol>tcp</ipProtocol>"));
        assert!(x.out.contains("<ipRanges>"));
        assert!(x.out.contains("<description>&lt;x&gt;</description>"));
        assert!(x.out.contains("<groups>"));
        let order = [
            "<ipProtocol>",
            "<fromPort>",
            "<toPort>",
            "<groups>",
            "<ipRanges>",
        ];
        let pos: Vec<usize> = order.iter().map(|t| x.out.find(t).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "EC2's element order");
        assert!(x.out.contains("<item>"));
    }
}
