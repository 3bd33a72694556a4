// csharp-blank: registers for INVOKE and SHUTDOWN and logs each event (the AWS sample's Blank).
// Usage: mono Blank.exe [EXTENSION_NAME]  (the launcher passes its own file name)
using System;
using System.Threading.Tasks;

namespace Lxprof.Extensions
{
    public static class Blank
    {
        public static int Main(string[] args)
        {
            var name = args.Length > 0 ? args[0] : "csharp-blank";
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
            }
        }
    }
}
