System.Console.WriteLine("CacheKit.Sample: not built yet.");
