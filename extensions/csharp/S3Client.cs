// A minimal S3 PutObject client over HttpClient, signed with SigV4. Settings come from the
// standard AWS environment: AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
// A custom endpoint means path-style addressing; without one, virtual-hosted real S3.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading.Tasks;

namespace Lxprof.Extensions
{
    public sealed class S3Settings
    {
        public string Region;
        public string AccessKeyId;
        public string SecretAccessKey;
        public string SessionToken;
        /// <summary>Custom endpoint (path-style), or null for real S3.</summary>
        public Uri Endpoint;

        public static S3Settings FromEnvironment()
        {
            var s = new S3Settings
            {
                Region = Env("AWS_REGION") ?? Env("AWS_DEFAULT_REGION") ?? "us-east-1",
                AccessKeyId = Env("AWS_ACCESS_KEY_ID"),
                SecretAccessKey = Env("AWS_SECRET_ACCESS_KEY"),
                SessionToken = Env("AWS_SESSION_TOKEN"),
            };
            var endpoint = Env("AWS_ENDPOINT_URL_S3") ?? Env("AWS_ENDPOINT_URL");
            if (endpoint != null) s.Endpoint = new Uri(endpoint.TrimEnd('/'));
            if (s.AccessKeyId == null || s.SecretAccessKey == null)
                throw new InvalidOperationException("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set");
            return s;
        }

        static string Env(string name)
        {
            var v = Environment.GetEnvironmentVariable(name);
            return string.IsNullOrEmpty(v) ? null : v;
        }
    }

    public sealed class S3Client
    {
        /// <summary>Upper bound of one PutObject: an invocation must never hang on S3.</summary>
        public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

        readonly S3Settings settings;
        readonly HttpClient http;

        public S3Client(S3Settings settings)
        {
            this.settings = settings;
            // Mono's default would wait for "100 Continue" before sending a PUT body.
            ServicePointManager.Expect100Continue = false;
            http = new HttpClient { Timeout = RequestTimeout };
            http.DefaultRequestHeaders.ExpectContinue = false;
        }

        public async Task PutObjectAsync(string bucket, string key, byte[] body, string contentType)
        {
            using (var request = BuildPutObject(bucket, key, body, contentType, DateTime.UtcNow))
            using (var response = await http.SendAsync(request).ConfigureAwait(false))
            {
                if (!response.IsSuccessStatusCode)
                {
                    var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                    throw new HttpRequestException("PutObject s3://" + bucket + "/" + key + " answered HTTP "
                        + (int)response.StatusCode + ": " + text);
                }
            }
        }

        /// <summary>The signed PutObject request.</summary>
        public HttpRequestMessage BuildPutObject(string bucket, string key, byte[] body, string contentType, DateTime now)
        {
            Uri url;
            string canonicalUri;
            var encodedKey = SigV4.UriEncode(key, false);
            if (settings.Endpoint != null)
            {
                var basePath = settings.Endpoint.AbsolutePath.TrimEnd('/');
                canonicalUri = basePath + "/" + SigV4.UriEncode(bucket, true) + "/" + encodedKey;
                url = new Uri(settings.Endpoint.GetLeftPart(UriPartial.Authority) + canonicalUri);
            }
            else
            {
                canonicalUri = "/" + encodedKey;
                url = new Uri("https://" + bucket + ".s3." + settings.Region + ".amazonaws.com" + canonicalUri);
            }
            var host = url.IsDefaultPort ? url.Host : url.Host + ":" + url.Port;
            var amzDate = now.ToUniversalTime().ToString("yyyyMMdd'T'HHmmss'Z'");
            var payloadHash = SigV4.Sha256Hex(body);
            var headers = new Dictionary<string, string>
            {
                { "host", host },
                { "x-amz-content-sha256", payloadHash },
                { "x-amz-date", amzDate },
            };
            if (settings.SessionToken != null) headers["x-amz-security-token"] = settings.SessionToken;
            var signed = SigV4.Sign("PUT", canonicalUri, null, headers, payloadHash, amzDate,
                settings.Region, "s3", settings.AccessKeyId, settings.SecretAccessKey);

            var request = new HttpRequestMessage(HttpMethod.Put, url);
            foreach (var h in headers)
                if (h.Key != "host") request.Headers.TryAddWithoutValidation(h.Key, h.Value);
            request.Headers.TryAddWithoutValidation("Authorization", signed.Authorization);
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            return request;
        }
    }
}
