// AWS Signature Version 4 (HMAC-SHA256), header-based, written out step by step so each
// intermediate value (canonical request, string to sign, signing key, signature) can be
// checked against AWS's published examples (see SigV4Test.cs).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text;

namespace Lxprof.Extensions
{
    /// <summary>Every value SigV4 computes for one request.</summary>
    public sealed class SigV4Result
    {
        public string CanonicalRequest;
        public string SignedHeaders;
        public string Scope;
        public string StringToSign;
        public byte[] SigningKey;
        public string Signature;
        public string Authorization;
    }

    public static class SigV4
    {
        public const string Algorithm = "AWS4-HMAC-SHA256";
        public const string EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

        /// <summary>Signs a request. <paramref name="headers"/> must hold every header to sign
        /// (host, x-amz-date, x-amz-content-sha256, ...); names are lower-cased and sorted here.
        /// <paramref name="canonicalUri"/> is the already URI-encoded path;
        /// <paramref name="query"/> holds the raw (unencoded) query parameters.</summary>
        public static SigV4Result Sign(
            string method, string canonicalUri, IEnumerable<KeyValuePair<string, string>> query,
            IDictionary<string, string> headers, string payloadHash, string amzDate,
            string region, string service, string accessKeyId, string secretAccessKey)
        {
            var r = new SigV4Result();
            var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var h in headers)
                sorted[h.Key.ToLowerInvariant()] = TrimValue(h.Value);
            r.SignedHeaders = string.Join(";", sorted.Keys);
            var canonical = new StringBuilder();
            canonical.Append(method).Append('\n');
            canonical.Append(canonicalUri).Append('\n');
            canonical.Append(CanonicalQuery(query)).Append('\n');
            foreach (var h in sorted)
                canonical.Append(h.Key).Append(':').Append(h.Value).Append('\n');
            canonical.Append('\n');
            canonical.Append(r.SignedHeaders).Append('\n');
            canonical.Append(payloadHash);
            r.CanonicalRequest = canonical.ToString();

            var date = amzDate.Substring(0, 8);
            r.Scope = date + "/" + region + "/" + service + "/aws4_request";
            r.StringToSign = Algorithm + "\n" + amzDate + "\n" + r.Scope + "\n"
                + Sha256Hex(Encoding.UTF8.GetBytes(r.CanonicalRequest));
            r.SigningKey = SigningKey(secretAccessKey, date, region, service);
            r.Signature = Hex(HmacSha256(r.SigningKey, r.StringToSign));
            r.Authorization = Algorithm + " Credential=" + accessKeyId + "/" + r.Scope
                + ",SignedHeaders=" + r.SignedHeaders + ",Signature=" + r.Signature;
            return r;
        }

        /// <summary>kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").</summary>
        public static byte[] SigningKey(string secretAccessKey, string date, string region, string service)
        {
            var kDate = HmacSha256(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), date);
            var kRegion = HmacSha256(kDate, region);
            var kService = HmacSha256(kRegion, service);
            return HmacSha256(kService, "aws4_request");
        }

        /// <summary>Query parameters sorted by encoded name, then value; each encoded.</summary>
        public static string CanonicalQuery(IEnumerable<KeyValuePair<string, string>> query)
        {
            if (query == null) return "";
            return string.Join("&", query
                .Select(p => new KeyValuePair<string, string>(UriEncode(p.Key, true), UriEncode(p.Value ?? "", true)))
                .OrderBy(p => p.Key, StringComparer.Ordinal)
                .ThenBy(p => p.Value, StringComparer.Ordinal)
                .Select(p => p.Key + "=" + p.Value));
        }

        /// <summary>RFC 3986 encoding as SigV4 wants it: unreserved A-Z a-z 0-9 - _ . ~ kept,
        /// everything else %XX (upper-case hex) over UTF-8; '/' kept unless encodeSlash.</summary>
        public static string UriEncode(string value, bool encodeSlash)
        {
            var sb = new StringBuilder();
            foreach (var b in Encoding.UTF8.GetBytes(value))
            {
                char c = (char)b;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash))
                    sb.Append(c);
                else
                    sb.Append('%').Append(((int)b).ToString("X2"));
            }
            return sb.ToString();
        }

        public static string Sha256Hex(byte[] data)
        {
            using (var sha = SHA256.Create()) return Hex(sha.ComputeHash(data));
        }

        public static byte[] HmacSha256(byte[] key, string data)
        {
            using (var hmac = new HMACSHA256(key)) return hmac.ComputeHash(Encoding.UTF8.GetBytes(data));
        }

        public static string Hex(byte[] bytes)
        {
            var sb = new StringBuilder(bytes.Length * 2);
            foreach (var b in bytes) sb.Append(b.ToString("x2"));
            return sb.ToString();
        }

        /// <summary>Trims a header value and collapses runs of spaces to one.</summary>
        static string TrimValue(string value)
        {
            var sb = new StringBuilder();
            bool space = false;
            foreach (var c in value.Trim())
            {
                if (c == ' ') { if (!space) sb.Append(c); space = true; }
                else { sb.Append(c); space = false; }
            }
            return sb.ToString();
        }
    }
}
