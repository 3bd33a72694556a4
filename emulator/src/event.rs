//! The default payload: an API Gateway REST API (Lambda proxy integration) event with the
//! header set a browser request through API Gateway carries.
use serde_json::{Value, json};

/// The default event as JSON bytes.
pub fn default_event() -> Vec<u8> {
    api_gateway_proxy_event().to_string().into_bytes()
}

/// An API Gateway REST proxy event (`GET /hello`) with 17 realistic headers.
pub fn api_gateway_proxy_event() -> Value {
    let headers = json!({
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Encoding": "gzip, deflate, br",
        "Accept-Language": "en-US,en;q=0.9",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Is-Mobile-Viewer": "false",
        "CloudFront-Is-SmartTV-Viewer": "false",
        "CloudFront-Is-Tablet-Viewer": "false",
        "CloudFront-Viewer-Country": "US",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Via": "2.0 f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "kXcZ0sO1v4bJ2ZpU3mQ9rW8tY7uI6oP5aS4dF3gH2jK1lZ0xC9vB8n==",
        "X-Amzn-Trace-Id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
        "X-Forwarded-For": "203.0.113.10, 130.176.88.4",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https"
    });
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        .unwrap_or_default();
    json!({
        "resource": "/hello",
        "path": "/hello",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": "/hello",
            "httpMethod": "GET",
            "extendedRequestId": "JJbxmplHYosFVYQ=",
            "requestTime": "10/Mar/2020:00:03:59 +0000",
            "path": "/Prod/hello",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "Prod",
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": 1583798639428u64,
            "requestId": "77375676-xmpl-4b79-853a-f982474efe18",
            "identity": {
                "sourceIp": "203.0.113.10",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
            },
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "apiId": "abcdef1234"
        },
        "body": null,
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_headers_and_is_json() {
        let v: Value = serde_json::from_slice(&default_event()).expect("json");
        assert_eq!(v["headers"].as_object().map(|h| h.len()), Some(17));
        assert_eq!(v["httpMethod"], "GET");
    }
}
