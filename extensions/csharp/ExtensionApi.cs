// Lambda Extensions API client (2020-01-01): register for INVOKE and SHUTDOWN, then
// long-poll /extension/event/next. Shared by Blank and EventCollector.
using System;
using System.IO;
using System.Net.Http;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Lxprof.Extensions
{
    /// <summary>One event from /extension/event/next, with its raw JSON.</summary>
    [DataContract]
    public sealed class ExtensionEvent
    {
        [DataMember(Name = "eventType")] public string EventType;
        [DataMember(Name = "requestId")] public string RequestId;
        [DataMember(Name = "shutdownReason")] public string ShutdownReason;
        [DataMember(Name = "deadlineMs")] public long DeadlineMs;
        [DataMember(Name = "invokedFunctionArn")] public string InvokedFunctionArn;

        /// <summary>The event exactly as the Extensions API sent it.</summary>
        public byte[] Raw;

        public bool IsShutdown { get { return EventType == "SHUTDOWN"; } }

        public static ExtensionEvent Parse(byte[] json)
        {
            var serializer = new DataContractJsonSerializer(typeof(ExtensionEvent));
            using (var stream = new MemoryStream(json))
            {
                var ev = (ExtensionEvent)serializer.ReadObject(stream);
                ev.Raw = json;
                return ev;
            }
        }
    }

    /// <summary>Registers an extension and hands out its events.</summary>
    public sealed class ExtensionApi
    {
        readonly HttpClient http;
        readonly string baseUrl;
        string identifier;

        /// <summary>The name the extension registers under: its file name in /opt/extensions.</summary>
        public string Name { get; private set; }

        public ExtensionApi(string name)
        {
            Name = name;
            var api = Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API");
            if (string.IsNullOrEmpty(api))
                throw new InvalidOperationException("AWS_LAMBDA_RUNTIME_API is not set: run inside a Lambda environment");
            baseUrl = "http://" + api + "/2020-01-01/extension";
            // /next blocks until the next event: no client-side timeout.
            http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        }

        public async Task RegisterAsync()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/register");
            request.Headers.Add("Lambda-Extension-Name", Name);
            request.Content = new StringContent("{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}", Encoding.UTF8, "application/json");
            using (var response = await http.SendAsync(request).ConfigureAwait(false))
            {
                var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw new InvalidOperationException("register failed: HTTP " + (int)response.StatusCode + " " + body);
                System.Collections.Generic.IEnumerable<string> ids;
                if (!response.Headers.TryGetValues("Lambda-Extension-Identifier", out ids))
                    throw new InvalidOperationException("register answered without Lambda-Extension-Identifier");
                foreach (var id in ids) { identifier = id; break; }
            }
        }

        public async Task<ExtensionEvent> NextAsync()
        {
            var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/event/next");
            request.Headers.Add("Lambda-Extension-Identifier", identifier);
            using (var response = await http.SendAsync(request).ConfigureAwait(false))
            {
                var body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw new InvalidOperationException("event/next failed: HTTP " + (int)response.StatusCode + " " + Encoding.UTF8.GetString(body));
                return ExtensionEvent.Parse(body);
            }
        }
    }
}
