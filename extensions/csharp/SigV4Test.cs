// Checks SigV4.cs against AWS's published Signature Version 4 examples:
// - the signing-key derivation example (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
//   20120215, us-east-1, iam) from the IAM user guide;
// - the S3 header-based examples (GET Object, PUT Object, GET Bucket Lifecycle, GET Bucket
//   list objects; examplebucket, 20130524T000000Z, AKIAIOSFODNN7EXAMPLE) from the S3 API reference.
// Prints "PASS name" or "FAIL name: got X, want Y" per check; exit code 0 when all pass.
//
// Second mode, for cross-checking S3Client against another SigV4 implementation:
//   SigV4Test.exe put-object ENDPOINT|- REGION BUCKET KEY BODY AMZDATE ACCESS SECRET [TOKEN]
// prints "url <url>" and one "header <name>: <value>" line per header S3Client sends.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Lxprof.Extensions
{
    public static class SigV4Test
    {
        const string AccessKey = "AKIAIOSFODNN7EXAMPLE";
        const string Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        const string AmzDate = "20130524T000000Z";
        const string Host = "examplebucket.s3.amazonaws.com";
        static int failures;

        static void Check(string name, string got, string want)
        {
            if (got == want) Console.WriteLine("PASS " + name);
            else { failures++; Console.WriteLine("FAIL " + name + ": got " + got + ", want " + want); }
        }

        static Dictionary<string, string> Headers(string payloadHash, params string[] extra)
        {
            var h = new Dictionary<string, string>
            {
                { "Host", Host }, { "x-amz-content-sha256", payloadHash }, { "x-amz-date", AmzDate },
            };
            for (int i = 0; i + 1 < extra.Length; i += 2) h[extra[i]] = extra[i + 1];
            return h;
        }

        public static int Main(string[] args)
        {
            if (args.Length > 0 && args[0] == "put-object") return PutObject(args);

            Check("signing-key", SigV4.Hex(SigV4.SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")),
                "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");

            var empty = SigV4.EmptyPayloadHash;
            Check("empty-payload-hash", SigV4.Sha256Hex(new byte[0]), empty);

            var get = SigV4.Sign("GET", "/test.txt", null, Headers(empty, "Range", "bytes=0-9"), empty, AmzDate,
                "us-east-1", "s3", AccessKey, Secret);
            Check("get-object-canonical-request", get.CanonicalRequest,
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                + "x-amz-content-sha256:" + empty + "\nx-amz-date:20130524T000000Z\n\n"
                + "host;range;x-amz-content-sha256;x-amz-date\n" + empty);
            Check("get-object-string-to-sign", get.StringToSign,
                "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
            Check("get-object-signature", get.Signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
            Check("get-object-authorization", get.Authorization,
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

            var body = Encoding.UTF8.GetBytes("Welcome to Amazon S3.");
            var bodyHash = SigV4.Sha256Hex(body);
            Check("put-object-payload-hash", bodyHash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
            var putPath = "/" + SigV4.UriEncode("test$file.text", false);
            Check("put-object-canonical-uri", putPath, "/test%24file.text");
            var put = SigV4.Sign("PUT", putPath, null,
                Headers(bodyHash, "Date", "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class", "REDUCED_REDUNDANCY"),
                bodyHash, AmzDate, "us-east-1", "s3", AccessKey, Secret);
            Check("put-object-string-to-sign", put.StringToSign,
                "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
            Check("put-object-signed-headers", put.SignedHeaders, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
            Check("put-object-signature", put.Signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

            var lifecycle = SigV4.Sign("GET", "/", new[] { new KeyValuePair<string, string>("lifecycle", "") },
                Headers(empty), empty, AmzDate, "us-east-1", "s3", AccessKey, Secret);
            Check("get-bucket-lifecycle-query", SigV4.CanonicalQuery(new[] { new KeyValuePair<string, string>("lifecycle", "") }), "lifecycle=");
            Check("get-bucket-lifecycle-signature", lifecycle.Signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");

            var list = SigV4.Sign("GET", "/", new[]
                {
                    new KeyValuePair<string, string>("prefix", "J"),
                    new KeyValuePair<string, string>("max-keys", "2"),
                },
                Headers(empty), empty, AmzDate, "us-east-1", "s3", AccessKey, Secret);
            Check("list-objects-signature", list.Signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");

            Check("uri-encode", SigV4.UriEncode("a b/c~d._-*ñ", true), "a%20b%2Fc~d._-%2A%C3%B1");

            Console.WriteLine(failures == 0 ? "sigv4: all checks passed" : "sigv4: " + failures + " check(s) failed");
            return failures == 0 ? 0 : 1;
        }

        static int PutObject(string[] a)
        {
            if (a.Length < 9)
            {
                Console.Error.WriteLine("usage: SigV4Test.exe put-object ENDPOINT|- REGION BUCKET KEY BODY AMZDATE ACCESS SECRET [TOKEN]");
                return 2;
            }
            var settings = new S3Settings
            {
                Endpoint = a[1] == "-" ? null : new Uri(a[1]),
                Region = a[2],
                AccessKeyId = a[7],
                SecretAccessKey = a[8],
                SessionToken = a.Length > 9 ? a[9] : null,
            };
            var now = DateTime.ParseExact(a[6], "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            var request = new S3Client(settings).BuildPutObject(a[3], a[4], Encoding.UTF8.GetBytes(a[5]), "application/json", now);
            Console.WriteLine("url " + request.RequestUri.AbsoluteUri);
            foreach (var h in request.Headers)
                Console.WriteLine("header " + h.Key.ToLowerInvariant() + ": " + string.Join(",", h.Value));
            return 0;
        }
    }
}
