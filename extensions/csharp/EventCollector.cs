// csharp-event-collector: on each INVOKE, PutObject the raw INVOKE JSON to
// s3://$EVENT_COLLECTOR_BUCKET/{AWS_LAMBDA_FUNCTION_NAME}/{UTC file time}.json, awaited before
// calling next (the AWS sample's C# EventCollector). An S3 failure is logged; next is still called.
// Usage: mono [--full-aot] EventCollector.exe [EXTENSION_NAME]  (the launcher passes its file name)
using System;
using System.Threading.Tasks;

namespace Lxprof.Extensions
{
    public static class EventCollector
    {
        public static int Main(string[] args)
        {
            var name = args.Length > 0 ? args[0] : "csharp-event-collector";
            try
            {
                return Run(name).GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                Console.Error.WriteLine("[" + name + "] fatal: " + e);
                return 1;
            }
        }

        static async Task<int> Run(string name)
        {
            var bucket = Environment.GetEnvironmentVariable("EVENT_COLLECTOR_BUCKET");
            if (string.IsNullOrEmpty(bucket))
            {
                Console.Error.WriteLine("[" + name + "] EVENT_COLLECTOR_BUCKET is not set: set it to the bucket to write to");
                return 1;
            }
            var functionName = Environment.GetEnvironmentVariable("AWS_LAMBDA_FUNCTION_NAME");
            if (string.IsNullOrEmpty(functionName)) functionName = "unknown-function";
            var s3 = new S3Client(S3Settings.FromEnvironment());
            var api = new ExtensionApi(name);
            await api.RegisterAsync().ConfigureAwait(false);
            while (true)
            {
                var ev = await api.NextAsync().ConfigureAwait(false);
                if (ev.IsShutdown)
                {
                    Console.WriteLine("[" + name + "] SHUTDOWN " + ev.ShutdownReason);
                    return 0;
                }
                Console.WriteLine("[" + name + "] INVOKE " + ev.RequestId);
                var key = functionName + "/" + DateTime.UtcNow.ToFileTimeUtc() + ".json";
                try
                {
                    await s3.PutObjectAsync(bucket, key, ev.Raw, "application/json").ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine("[" + name + "] PutObject s3://" + bucket + "/" + key + " failed: " + e.Message
                        + (e.InnerException != null ? " (" + e.InnerException.Message + ")" : ""));
                }
            }
        }
    }
}
