// header-counter-dotnet: the HeaderCounter function of aws-samples/lambda-extension-optimization
// in C#, with a small hand-written Lambda Runtime API loop (2018-06-01; no NuGet here). Logs a
// line, waits HEADER_COUNTER_DELAY_MS (default 500) and answers an API Gateway proxy response
// `200 "Your request has N headers"`, as the Rust header-counter does.
// Usage: dotnet exec --runtimeconfig HeaderCounter.runtimeconfig.json HeaderCounter.exe
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Threading.Tasks;

namespace Lxprof.Functions
{
    /// <summary>The part of an API Gateway proxy event the function reads.</summary>
    [DataContract]
    public sealed class ProxyEvent
    {
        [DataMember(Name = "headers")] public Dictionary<string, string> Headers;

        public static int CountHeaders(byte[] json)
        {
            var settings = new DataContractJsonSerializerSettings { UseSimpleDictionaryFormat = true };
            var serializer = new DataContractJsonSerializer(typeof(ProxyEvent), settings);
            using (var stream = new System.IO.MemoryStream(json))
            {
                var ev = (ProxyEvent)serializer.ReadObject(stream);
                return ev == null || ev.Headers == null ? 0 : ev.Headers.Count;
            }
        }
    }

    public static class HeaderCounter
    {
        public static int Main(string[] args)
        {
            try
            {
                return Run().GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                Console.Error.WriteLine("HeaderCounter: fatal: " + e);
                return 1;
            }
        }

        static int DelayMs()
        {
            int ms;
            var v = Environment.GetEnvironmentVariable("HEADER_COUNTER_DELAY_MS");
            return int.TryParse(v, out ms) && ms >= 0 ? ms : 500;
        }

        static async Task<int> Run()
        {
            var api = Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API");
            if (string.IsNullOrEmpty(api))
            {
                Console.Error.WriteLine("HeaderCounter: AWS_LAMBDA_RUNTIME_API is not set: run inside a Lambda environment");
                return 1;
            }
            var baseUrl = "http://" + api + "/2018-06-01/runtime";
            var delay = DelayMs();
            // /next blocks until the next invocation: no client-side timeout.
            var http = new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            while (true)
            {
                string requestId;
                byte[] body;
                using (var next = await http.GetAsync(baseUrl + "/invocation/next").ConfigureAwait(false))
                {
                    body = await next.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                    if (!next.IsSuccessStatusCode)
                        throw new InvalidOperationException("invocation/next failed: HTTP " + (int)next.StatusCode + " " + Encoding.UTF8.GetString(body));
                    IEnumerable<string> ids;
                    if (!next.Headers.TryGetValues("Lambda-Runtime-Aws-Request-Id", out ids))
                        throw new InvalidOperationException("invocation/next answered without Lambda-Runtime-Aws-Request-Id");
                    requestId = null;
                    foreach (var id in ids) { requestId = id; break; }
                }
                string path;
                string answer;
                try
                {
                    var n = ProxyEvent.CountHeaders(body);
                    Console.WriteLine("HeaderCounter: request " + requestId + " has " + n + " headers");
                    await Task.Delay(delay).ConfigureAwait(false);
                    path = "/response";
                    answer = "{\"statusCode\":200,\"headers\":{\"Content-Type\":\"text/plain\"},\"isBase64Encoded\":false,"
                        + "\"body\":\"Your request has " + n + " headers\"}";
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine("HeaderCounter: request " + requestId + " failed: " + e.Message);
                    path = "/error";
                    answer = "{\"errorMessage\":\"" + JsonEscape(e.Message) + "\",\"errorType\":\"" + e.GetType().Name + "\",\"stackTrace\":[]}";
                }
                var content = new StringContent(answer, Encoding.UTF8, "application/json");
                using (var posted = await http.PostAsync(baseUrl + "/invocation/" + requestId + path, content).ConfigureAwait(false))
                {
                    if (!posted.IsSuccessStatusCode)
                        Console.Error.WriteLine("HeaderCounter: posting " + path + " for " + requestId + ": HTTP " + (int)posted.StatusCode);
                }
            }
        }

        static string JsonEscape(string s)
        {
            var b = new StringBuilder();
            foreach (var c in s ?? "")
            {
                if (c == '"' || c == '\\') b.Append('\\').Append(c);
                else if (c < ' ') b.Append("\\u").Append(((int)c).ToString("x4"));
                else b.Append(c);
            }
            return b.ToString();
        }
    }
}
