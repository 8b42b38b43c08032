System.Console.WriteLine("CacheKit.Simulator: not built yet.");
