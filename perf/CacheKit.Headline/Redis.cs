using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CacheKit.Perf;
using StackExchange.Redis;

namespace CacheKit.Headline;

/// <summary>
/// A private redis-server on 127.0.0.1 and a free port, started for the benchmark and stopped after
/// (no persistence). <see cref="TryStart"/> says why when it cannot.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port, ConnectionMultiplexer connection, string executable)
    {
        _process = process;
        Port = port;
        Connection = connection;
        Executable = executable;
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>The client connection (admin commands allowed).</summary>
    public ConnectionMultiplexer Connection { get; }

    /// <summary>The redis-server binary used.</summary>
    public string Executable { get; }

    /// <summary>Finds redis-server on PATH or in the usual Debian places; null if absent.</summary>
    public static string? Find()
    {
        IEnumerable<string> dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"]);
        return dirs.Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
    }

    /// <summary>Installs Debian's redis-server with apt-get (only as root, only when asked).</summary>
    public static string TryInstall()
    {
        try
        {
            var psi = new ProcessStartInfo("bash", "-c \"(apt-get install -y redis-server || (apt-get update && apt-get install -y redis-server)) >/dev/null 2>&1\"") { UseShellExecute = false };
            using Process? p = Process.Start(psi);
            if (p is null || !p.WaitForExit(TimeSpan.FromMinutes(3)))
            {
                return "apt-get did not finish within 3 minutes";
            }
            return p.ExitCode == 0 ? "installed redis-server with apt-get" : $"apt-get install redis-server failed (exit {p.ExitCode}; root is needed)";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return "could not run apt-get: " + e.Message;
        }
    }

    /// <summary>Starts a server, or returns null with the reason.</summary>
    public static RedisServer? TryStart(out string message)
    {
        string? exe = Find();
        if (exe is null)
        {
            message = "redis-server not found (on Debian/Ubuntu: apt-get install -y redis-server, or run with --install-redis as root); Redis rows are skipped";
            return null;
        }
        int port = FreePort();
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning" })
        {
            psi.ArgumentList.Add(a);
        }
        Process? process;
        try
        {
            process = Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            message = $"could not start {exe}: {e.Message}; Redis rows are skipped";
            return null;
        }
        if (process is null)
        {
            message = $"could not start {exe}; Redis rows are skipped";
            return null;
        }
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (process.HasExited)
            {
                message = $"{exe} exited at once (code {process.ExitCode}); Redis rows are skipped";
                return null;
            }
            try
            {
                var config = ConfigurationOptions.Parse($"127.0.0.1:{port}");
                config.AllowAdmin = true;
                config.ConnectTimeout = 1000;
                config.AbortOnConnectFail = true;
                ConnectionMultiplexer connection = ConnectionMultiplexer.Connect(config);
                message = $"redis-server {connection.GetServer("127.0.0.1", port).Version} ({exe}) on 127.0.0.1:{port}";
                return new RedisServer(process, port, connection, exe);
            }
            catch (RedisConnectionException)
            {
                Thread.Sleep(100);
            }
        }
        process.Kill();
        process.Dispose();
        message = $"{exe} did not accept connections within 10 s; Redis rows are skipped";
        return null;
    }

    /// <summary>INFO memory's used_memory and used_memory_rss.</summary>
    public (long Used, long Rss) MemoryInfo()
    {
        Dictionary<string, string> info = Info("memory");
        return (long.Parse(info["used_memory"], CultureInfo.InvariantCulture), long.Parse(info["used_memory_rss"], CultureInfo.InvariantCulture));
    }

    /// <summary>INFO stats' evicted_keys: keys evicted since the server started.</summary>
    public long EvictedKeys() => long.Parse(Info("stats")["evicted_keys"], CultureInfo.InvariantCulture);

    private Dictionary<string, string> Info(string section)
        => Connection.GetServer("127.0.0.1", Port).Info(section).SelectMany(g => g).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>Empties the database and sets maxmemory (0 = none) with allkeys-lru eviction.</summary>
    public void Reset(long maxMemoryBytes)
    {
        IServer server = Connection.GetServer("127.0.0.1", Port);
        server.FlushAllDatabases();
        server.ConfigSet("maxmemory-policy", "allkeys-lru");
        server.ConfigSet("maxmemory", maxMemoryBytes.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Stops the server.</summary>
    public void Dispose()
    {
        try
        {
            Connection.GetServer("127.0.0.1", Port).Shutdown(ShutdownMode.Never);
        }
        catch (RedisException)
        {
            // It goes down while answering; the kill below covers any other case.
        }
        Connection.Dispose();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            _process.Kill();
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Redis through StackExchange.Redis (synchronous calls: one round trip each).</summary>
public sealed class RedisAdapter(Workload w, RedisServer server) : CacheAdapter(w)
{
    private readonly IDatabase _db = server.Connection.GetDatabase();

    /// <summary>Row name.</summary>
    public const string RowName = "Redis (127.0.0.1)";

    /// <inheritdoc/>
    public override string Name => RowName;

    /// <inheritdoc/>
    public override long Count => server.Connection.GetServer("127.0.0.1", server.Port).DatabaseSize();

    /// <inheritdoc/>
    public override bool Get(int id, byte[] scratch) => !_db.StringGet(W.Keys[id]).IsNull;

    /// <inheritdoc/>
    public override void Set(int id) => _db.StringSet(W.Keys[id], W.Values[id]);

    /// <summary>Stores every key with MSET batches of 1000.</summary>
    public void FillBatched() => SetBatched(Enumerable.Range(0, W.KeyCount), done: null);

    /// <summary>
    /// Stores the keys of <paramref name="draws"/> in order with MSET batches of 1000 until the server evicts (its
    /// maxmemory is reached), at most one pass. One set per round trip would take minutes to fill a 100K-entry
    /// bound. The draws must not be the measured stream: the measurement, a few thousand round trips, would then
    /// read back the keys just written (99 % hits at a 1:10 bound). Returns whether it evicted.
    /// </summary>
    public bool FillUntilEvicting(int[] draws)
    {
        long evicted0 = server.EvictedKeys();
        return SetBatched(draws, () => server.EvictedKeys() > evicted0);
    }

    /// <summary>MSETs the keys <paramref name="ids"/> in batches of 1000, stopping early once <paramref name="done"/> says so; returns its last answer.</summary>
    private bool SetBatched(IEnumerable<int> ids, Func<bool>? done)
    {
        var batch = new List<KeyValuePair<RedisKey, RedisValue>>(1000);
        foreach (int id in ids)
        {
            batch.Add(new(W.Keys[id], W.Values[id]));
            if (batch.Count == 1000)
            {
                _db.StringSet([.. batch]);
                batch.Clear();
                if (done?.Invoke() == true)
                {
                    return true;
                }
            }
        }
        if (batch.Count > 0)
        {
            _db.StringSet([.. batch]);
        }
        return done?.Invoke() ?? true;
    }
}
