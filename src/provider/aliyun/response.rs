//! Response bodies as the ECS RPC API writes them: JSON (the default) and XML.

use serde_json::{json, Value};

use crate::provider::ApiError;

/// The `HostId` of error bodies.
pub(crate) const HOST_ID: &str = "ecs.aliyuncs.com";

/// The success body: `{"RequestId": …}`.
pub(crate) fn success_json(request_id: &str) -> Value {
    json!({ "RequestId": request_id })
}

/// The success body as XML, `<{Action}Response><RequestId>…</RequestId></{Action}Response>`.
pub(crate) fn success_xml(action: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{action}Response><RequestId>{}</RequestId></{action}Response>",
        escape(request_id)
    )
}

/// The error body: `{"RequestId", "HostId", "Code", "Message"}`.
pub(crate) fn error_json(request_id: &str, error: &ApiError) -> Value {
    json!({
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": error.code,
        "Message": error.message,
    })
}

/// The error body as XML.
pub(crate) fn error_xml(request_id: &str, error: &ApiError) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>{}</RequestId><HostId>{}</HostId><Code>{}</Code><Message>{}</Message></Error>",
        escape(request_id),
        escape(HOST_ID),
        escape(&error.code),
        escape(&error.message)
    )
}

/// Escapes text for XML character data (and attribute values).
pub(crate) fn escape(text: &str) -> String {
    crate::provider::xml_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_api_shape_and_escape() {
        let e = ApiError::new("InvalidParam.SourceIp", 400, "a <b> & \"c\"");
        let x = error_xml("ID-1", &e);
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>ID-1</RequestId><HostId>ecs.aliyuncs.com</HostId>"));
        assert!(x.contains("<Message>a &lt;b&gt; &amp; &quot;c&quot;</Message>"));
        assert_eq!(error_json("ID-1", &e)["Code"], "InvalidParam.SourceIp");
        assert_eq!(
            success_xml("RevokeSecurityGroupEgress", "R"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><RevokeSecurityGroupEgressResponse><RequestId>R</RequestId></RevokeSecurityGroupEgressResponse>"
        );
        assert_eq!(escape("\u{1}"), "\u{fffd}");
        assert_eq!(escape("\t\u{7f}\u{9b}"), "&#x9;&#x7F;&#x9B;");
    }
}
