// Build tool: prints the file paths of an assembly's whole reference closure (itself first),
// resolving references in the given directories (e.g. /usr/lib/mono/4.5 and its Facades).
// Used by extensions/build.sh to gather everything `mono --aot=full` must compile.
// Usage: mono Closure.exe ASSEMBLY DIR [DIR...]   (exit 1 when a reference cannot be found)
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;

namespace Lxprof.Extensions
{
    public static class Closure
    {
        public static int Main(string[] args)
        {
            if (args.Length < 2)
            {
                Console.Error.WriteLine("usage: Closure.exe ASSEMBLY DIR [DIR...]");
                return 2;
            }
            var dirs = new List<string>(args);
            dirs.RemoveAt(0);
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var pending = new Queue<string>();
            pending.Enqueue(Path.GetFullPath(args[0]));
            seen.Add(Path.GetFileNameWithoutExtension(args[0]));
            int missing = 0;
            while (pending.Count > 0)
            {
                var path = pending.Dequeue();
                Console.WriteLine(path);
                foreach (var reference in Assembly.ReflectionOnlyLoadFrom(path).GetReferencedAssemblies())
                {
                    if (!seen.Add(reference.Name)) continue;
                    var found = Find(reference.Name, dirs);
                    if (found == null)
                    {
                        Console.Error.WriteLine("closure: " + reference.FullName + " (referenced by " + path + ") not found in " + string.Join(", ", dirs));
                        missing++;
                        continue;
                    }
                    pending.Enqueue(found);
                }
            }
            return missing == 0 ? 0 : 1;
        }

        static string Find(string name, List<string> dirs)
        {
            foreach (var dir in dirs)
                foreach (var ext in new[] { ".dll", ".exe" })
                {
                    var candidate = Path.Combine(dir, name + ext);
                    if (File.Exists(candidate)) return candidate;
                }
            return null;
        }
    }
}
