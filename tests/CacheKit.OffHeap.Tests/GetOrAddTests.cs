using System.Buffers;
using System.Text;

namespace CacheKit.OffHeap.Tests;

public class GetOrAddTests
{
    private static OffHeapCache Create() => new(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024 });

    [Test]
    public void AMissThenAHitCountOneMissAndOneHit()
    {
        // Regression: the flight leader's re-check used to count as a second miss.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(3);
        var destination = new ArrayBufferWriter<byte>();
        Assert.That(cache.GetOrAdd(key, 0, static (_, _, w) => w.Write("v"u8), destination), Is.False);
        Assert.That(cache.GetOrAdd(key, 0, static (_, _, w) => w.Write("v"u8), destination), Is.True);
        CacheStatistics stats = cache.GetStatistics();
        Assert.That((stats.Misses, stats.Hits), Is.EqualTo((1L, 1L)));
    }

    [Test]
    public void ASetMadeWhileTheFactoryRunsIsNotOverwrittenByItsValue()
    {
        // The factory computes from what it read before; a Set that lands meanwhile (an invalidation writing the new
        // value) is newer, so the flight's value must not replace it. The flight's callers still get the factory's.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(5), fresh = "fresh"u8.ToArray();
        var destination = new ArrayBufferWriter<byte>();
        bool fromCache = cache.GetOrAdd(key, (cache, key, fresh), static (_, s, writer) =>
        {
            s.cache.Set(s.key, s.fresh);   // the concurrent writer, made deterministic
            writer.Write("stale"u8);
        }, destination);
        Assert.That(fromCache, Is.False);
        Assert.That(destination.WrittenSpan.ToArray(), Is.EqualTo("stale"u8.ToArray()), "the caller gets what its factory made");
        var buffer = new byte[16];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer[..written], Is.EqualTo(fresh), "the cache keeps the newer Set");

        // Without a concurrent Set the factory's value is stored as before.
        byte[] other = TestKeys.Key(6);
        cache.GetOrAdd(other, 0, static (_, _, w) => w.Write("made"u8), new ArrayBufferWriter<byte>());
        Assert.That(cache.TryGet(other, buffer, out written) && buffer.AsSpan(0, written).SequenceEqual("made"u8), Is.True);
    }

    [Test]
    public void ARemoveMadeWhileTheFactoryRunsKeepsItsValueOut()
    {
        // An invalidation that removes the key (the source changed) while the factory computes from the old source:
        // storing the factory's value would bring the stale data back for good. Its callers still get it.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(7), other = TestKeys.Key(8);
        var destination = new ArrayBufferWriter<byte>();
        bool fromCache = cache.GetOrAdd(key, (cache, key), static (_, s, writer) =>
        {
            Assert.That(s.cache.Remove(s.key), Is.False, "nothing stored yet");   // the concurrent invalidation, made deterministic
            writer.Write("stale"u8);
        }, destination);
        Assert.That(fromCache, Is.False);
        Assert.That(destination.WrittenSpan.ToArray(), Is.EqualTo("stale"u8.ToArray()), "the caller gets what its factory made");
        Assert.That(cache.ContainsKey(key), Is.False, "the removed key stays removed");

        // A Remove of another key does not keep the value out; the next flight of the key stores as before.
        cache.GetOrAdd(key, (cache, other), static (_, s, w) =>
        {
            s.cache.Remove(s.other);
            w.Write("fresh"u8);
        }, new ArrayBufferWriter<byte>());
        var buffer = new byte[16];
        Assert.That(cache.TryGet(key, buffer, out int written) && buffer.AsSpan(0, written).SequenceEqual("fresh"u8), Is.True);
    }

    [Test]
    public void AClearMadeWhileTheFactoryRunsKeepsItsValueOut()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(9);
        cache.GetOrAdd(key, cache, static (_, c, w) =>
        {
            c.Clear();
            w.Write("stale"u8);
        }, new ArrayBufferWriter<byte>());
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.Count, Is.Zero);
    }

    [Test]
    public async Task ARemoveMadeWhileAnAsyncFactoryRunsKeepsItsValueOut()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(10);
        var destination = new ArrayBufferWriter<byte>();
        bool fromCache = await cache.GetOrAddAsync(key, (cache, key), static async (_, s, writer, ct) =>
        {
            await Task.Yield();
            s.cache.Remove(s.key);
            writer.Write("stale"u8);
        }, destination);
        Assert.That(fromCache, Is.False);
        Assert.That(destination.WrittenSpan.ToArray(), Is.EqualTo("stale"u8.ToArray()));
        Assert.That(cache.ContainsKey(key), Is.False);
    }

    [Test]
    public void ACallerArrivingAfterARemoveRunsItsOwnFactoryInsteadOfJoiningTheInvalidatedOne()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(12);
        using var inFactory = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var leaderResult = new ArrayBufferWriter<byte>();
        var leader = new Thread(() => cache.GetOrAdd(key, (inFactory, release), static (_, s, w) =>
        {
            s.inFactory.Set();
            s.release.Wait();
            w.Write("stale"u8);
        }, leaderResult));
        leader.Start();
        inFactory.Wait();
        Assert.That(cache.Remove(key), Is.False);   // the invalidation, after the leader's factory read the old data
        var late = new ArrayBufferWriter<byte>();
        bool lateFromCache = true;
        var lateCaller = new Thread(() => lateFromCache = cache.GetOrAdd(key, 0, static (_, _, w) => w.Write("fresh"u8), late));   // starts after the Remove returned
        lateCaller.Start();
        bool lateDidNotWait = lateCaller.Join(TimeSpan.FromSeconds(5));   // joining the old flight, it would wait for the leader
        release.Set();
        leader.Join();
        lateCaller.Join();
        Assert.That(lateDidNotWait, Is.True, "the late caller waited for the invalidated flight");
        Assert.That((lateFromCache, Encoding.ASCII.GetString(late.WrittenSpan)), Is.EqualTo((false, "fresh")));
        Assert.That(Encoding.ASCII.GetString(leaderResult.WrittenSpan), Is.EqualTo("stale"), "the leader's caller gets its own factory's value");
        var buffer = new byte[16];
        Assert.That(cache.TryGet(key, buffer, out int written) ? Encoding.ASCII.GetString(buffer, 0, written) : "", Is.EqualTo("fresh"),
            "the new flight stored; the invalidated one did not overwrite it");
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public void AFactoryThatRemovesItsOwnKeyAndThenAsksForItIsRefusedAsAnyFactoryAskingForItsOwnKey()
    {
        // The removal invalidates its own flight; asking for the key then must not lead a new flight (which ran the same
        // factory again, and again, until the stack overflowed) but be refused like any factory asking for its own key.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(14);
        var depth = new System.Runtime.CompilerServices.StrongBox<int>();
        ValueFactory<(OffHeapCache Cache, byte[] Key, System.Runtime.CompilerServices.StrongBox<int> Depth)>? factory = null;
        factory = (_, s, w) =>
        {
            if (++s.Depth.Value > 3)
            {
                throw new InvalidProgramException("recursed");   // the test's guard, not the cache's answer
            }
            s.Cache.Remove(s.Key);
            s.Cache.GetOrAdd(s.Key, s, factory!, new ArrayBufferWriter<byte>());
            w.Write("x"u8);
        };
        Assert.That(() => cache.GetOrAdd(key, (cache, key, depth), factory, new ArrayBufferWriter<byte>()), Throws.InvalidOperationException);
        Assert.That(depth.Value, Is.EqualTo(1));
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public void EveryWriteOfTheKeyWhileTheFactoryRunsKeepsItsValueOut([Values("expiring Set", "refused TryUpdate", "TryAdd", "SetMany", "Remove into a span", "RemoveIfEquals")] string write)
    {
        // Whatever the write did (even nothing: a TryUpdate of the absent key), it came after what the factory read.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(13);
        cache.GetOrAdd(key, (cache, key, time, write), static (_, s, w) =>
        {
            switch (s.write)
            {
                case "expiring Set":
                    s.cache.Set(s.key, "fresh"u8, TimeSpan.FromSeconds(1));
                    s.time.Advance(TimeSpan.FromSeconds(2));   // gone before the leader stores
                    break;
                case "refused TryUpdate":
                    Assert.That(s.cache.TryUpdate(s.key, "fresh"u8), Is.False);
                    break;
                case "TryAdd":
                    s.cache.TryAdd(s.key, "fresh"u8, TimeSpan.FromSeconds(1));
                    s.time.Advance(TimeSpan.FromSeconds(2));
                    break;
                case "Remove into a span":
                    Assert.That(s.cache.Remove(s.key, new byte[8], out int written), Is.False);
                    Assert.That(written, Is.Zero);
                    break;
                case "RemoveIfEquals":
                    Assert.That(s.cache.RemoveIfEquals(s.key, "stale"u8), Is.False);
                    break;
                default:
                    s.cache.SetMany([new(s.key, "fresh"u8.ToArray())], TimeSpan.FromSeconds(1));
                    s.time.Advance(TimeSpan.FromSeconds(2));
                    break;
            }
            w.Write("stale"u8);
        }, new ArrayBufferWriter<byte>(), Timeout.InfiniteTimeSpan);
        Assert.That(cache.ContainsKey(key), Is.False);
    }

    [Test]
    public void AfterTheLastInvalidationTheCacheHoldsNoValueOlderThanIt([Values(2_000)] int rounds)
    {
        // The invalidate-on-write pattern under threads: a writer bumps the source's version, then removes the key;
        // readers GetOrAdd the key from the source. Whatever the interleaving, once the writer has made its last
        // Remove and every reader has returned, the cache holds the key's last version or nothing.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(11);
        var source = new System.Runtime.CompilerServices.StrongBox<long>();
        var failures = new List<string>();
        for (int round = 0; round < rounds; round++)
        {
            using var start = new Barrier(3);
            var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < 4; i++)
                {
                    cache.GetOrAdd(key, source, static (_, src, w) =>
                    {
                        long version = Volatile.Read(ref src.Value);
                        Thread.SpinWait(50);   // the window the stale store needs
                        w.Write(BitConverter.GetBytes(version));
                    }, new ArrayBufferWriter<byte>());
                }
            })).ToArray();
            foreach (Thread t in readers)
            {
                t.Start();
            }
            start.SignalAndWait();
            for (int i = 0; i < 4; i++)
            {
                Interlocked.Increment(ref source.Value);
                cache.Remove(key);
                Thread.SpinWait(20);
            }
            foreach (Thread t in readers)
            {
                t.Join();
            }
            var buffer = new byte[8];
            if (cache.TryGet(key, buffer, out _) && BitConverter.ToInt64(buffer) != source.Value)
            {
                failures.Add($"round {round}: cached version {BitConverter.ToInt64(buffer)}, source {source.Value}");
            }
            cache.Remove(key);
        }
        Assert.That(failures, Is.Empty);
        cache.ValidateInvariants();   // includes the flight counters: all back to 0
    }

    [Test]
    public void ConcurrentMissesRunTheFactoryOnceAndEveryCallerGetsItsValue()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(1);
        var calls = new System.Runtime.CompilerServices.StrongBox<int>();
        using var release = new ManualResetEventSlim();
        const int Callers = 8;
        var results = new byte[Callers][];
        var fromCache = new bool[Callers];
        var threads = Enumerable.Range(0, Callers).Select(t => new Thread(() =>
        {
            var destination = new ArrayBufferWriter<byte>();
            fromCache[t] = cache.GetOrAdd(key, (release, calls), static (k, s, writer) =>
            {
                Interlocked.Increment(ref s.calls.Value);
                s.release.Wait();   // hold every caller inside the flight
                writer.Write(Encoding.ASCII.GetBytes("made once"));
            }, destination);
            results[t] = destination.WrittenSpan.ToArray();
        })).ToList();

        threads.ForEach(t => t.Start());
        Assert.That(SpinWait.SpinUntil(() => cache.FlightCount == 1, TimeSpan.FromSeconds(10)), Is.True, "the flight started");
        Thread.Sleep(50);   // let the others join the flight (correctness does not depend on it)
        release.Set();
        threads.ForEach(t => t.Join());

        foreach (byte[] r in results)
        {
            Assert.That(Encoding.ASCII.GetString(r), Is.EqualTo("made once"));
        }
        Assert.That(cache.FlightCount, Is.Zero);
        var buffer = new byte[32];
        Assert.That(cache.TryGet(key, buffer, out int n) && Encoding.ASCII.GetString(buffer, 0, n) == "made once", Is.True, "the value was cached");
        Assert.That(calls.Value, Is.EqualTo(1));
        Assert.That(fromCache.Count(c => !c), Is.GreaterThanOrEqualTo(1), "at least the leader reports a factory value");
    }

    [Test]
    public void CountingFactoryRunsOncePerMissAcrossManyThreads()
    {
        using OffHeapCache cache = Create();
        var counts = new int[50];
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int round = 0; round < 3; round++)
            {
                for (int id = 0; id < counts.Length; id++)
                {
                    var destination = new ArrayBufferWriter<byte>();
                    cache.GetOrAdd(TestKeys.Key(id), (counts, id), static (k, s, writer) =>
                    {
                        Interlocked.Increment(ref s.counts[s.id]);
                        Thread.SpinWait(2000);
                        writer.Write(TestKeys.Value(s.id, 0, 64));
                    }, destination);
                    Assert.That(destination.WrittenSpan.SequenceEqual(TestKeys.Value(id, 0, 64)), Is.True);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.That(counts, Is.All.EqualTo(1), "each key's factory ran exactly once (nothing is evicted at this size)");
    }

    [Test]
    public void ThrowingFactoryCachesNothingAndEveryWaiterSeesTheException()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(2);
        using var gate = new ManualResetEventSlim();
        var seen = new Exception?[4];
        using var entered = new CountdownEvent(seen.Length);
        var runs = new System.Runtime.CompilerServices.StrongBox<int>();
        var threads = Enumerable.Range(0, seen.Length).Select(t => new Thread(() =>
        {
            try
            {
                entered.Signal();
                cache.GetOrAdd(key, (gate, runs), static (k, s, w) =>
                {
                    Interlocked.Increment(ref s.runs.Value);
                    s.gate.Wait(TimeSpan.FromSeconds(10));
                    throw new InvalidOperationException("factory failed");
                }, new ArrayBufferWriter<byte>());
            }
            catch (Exception e)
            {
                seen[t] = e;
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        // Every caller is inside GetOrAdd and blocked (the leader in its factory, the others waiting for the
        // flight) before the factory throws, so no caller can lead a second flight after the first failed.
        Assert.That(entered.Wait(TimeSpan.FromSeconds(10)), Is.True, "every caller started");
        bool AllJoined() => Volatile.Read(ref runs.Value) >= 1 && cache.FlightCount == 1
            && threads.All(t => (t.ThreadState & ThreadState.WaitSleepJoin) != 0);
        Assert.That(SpinWait.SpinUntil(AllJoined, TimeSpan.FromSeconds(10)), Is.True, "every caller joined the flight");
        Thread.Sleep(50);
        Assert.That(SpinWait.SpinUntil(AllJoined, TimeSpan.FromSeconds(10)), Is.True, "every caller still waits on the flight");
        gate.Set();
        Assert.That(threads.All(t => t.Join(TimeSpan.FromSeconds(10))), Is.True, "every caller returned");
        Assert.That(runs.Value, Is.EqualTo(1), "single flight: one factory run for all the callers");
        Assert.That(seen, Has.All.InstanceOf<InvalidOperationException>().And.Property("Message").EqualTo("factory failed"));
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.Count, Is.Zero);
        Assert.That(cache.FlightCount, Is.Zero);

        // The next call runs a factory again.
        var destination = new ArrayBufferWriter<byte>();
        Assert.That(cache.GetOrAdd(key, 0, static (k, s, w) => w.Write("ok"u8), destination), Is.False);
        Assert.That(destination.WrittenSpan.SequenceEqual("ok"u8), Is.True);
    }

    [Test]
    public void CancelledWaiterStopsWaitingAndCancelledLeaderLetsAWaiterTakeOver()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(3);
        using var leaderStarted = new ManualResetEventSlim();
        using var leaderCts = new CancellationTokenSource();
        Exception? leaderError = null;
        var leader = new Thread(() =>
        {
            try
            {
                cache.GetOrAdd(key, (leaderStarted, leaderCts.Token), static (k, s, w) =>
                {
                    s.leaderStarted.Set();
                    s.Token.WaitHandle.WaitOne();
                    s.Token.ThrowIfCancellationRequested();
                }, new ArrayBufferWriter<byte>(), cancellationToken: leaderCts.Token);
            }
            catch (Exception e)
            {
                leaderError = e;
            }
        });
        leader.Start();
        leaderStarted.Wait();

        // A waiter that cancels gets OperationCanceledException while the factory still runs.
        using var waiterCts = new CancellationTokenSource();
        Task<bool> cancelledWaiter = Task.Run(() => cache.GetOrAdd(key, 0, static (k, s, w) => w.Write("late"u8), new ArrayBufferWriter<byte>(), cancellationToken: waiterCts.Token));
        waiterCts.CancelAfter(20);
        Assert.That(() => cancelledWaiter.GetAwaiter().GetResult(), Throws.InstanceOf<OperationCanceledException>());

        // A patient waiter takes over when the leader is cancelled.
        var patientDestination = new ArrayBufferWriter<byte>();
        Task<bool> patient = Task.Run(() => cache.GetOrAdd(key, 0, static (k, s, w) => w.Write("second"u8), patientDestination));
        Assert.That(SpinWait.SpinUntil(() => cache.FlightCount == 1, TimeSpan.FromSeconds(10)), Is.True, "the leader's flight runs");
        leaderCts.Cancel();
        leader.Join();
        Assert.That(leaderError, Is.InstanceOf<OperationCanceledException>());
        Assert.That(patient.GetAwaiter().GetResult(), Is.False);
        Assert.That(Encoding.ASCII.GetString(patientDestination.WrittenSpan), Is.EqualTo("second"));
    }

    [Test]
    public async Task GetOrAddAsyncRunsTheFactoryOnceForConcurrentCallers()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(4);
        int calls = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var destinations = Enumerable.Range(0, 6).Select(_ => new ArrayBufferWriter<byte>()).ToArray();
        Task<bool>[] tasks = destinations.Select(d => cache.GetOrAddAsync(key, gate, async (k, g, w, ct) =>
        {
            Interlocked.Increment(ref calls);
            await g.Task.WaitAsync(ct);
            w.Write("async value"u8);
        }, d).AsTask()).ToArray();
        Assert.That(SpinWait.SpinUntil(() => cache.FlightCount == 1 && Volatile.Read(ref calls) == 1, TimeSpan.FromSeconds(10)), Is.True, "the factory started");
        await Task.Delay(20);
        gate.SetResult();
        await Task.WhenAll(tasks);
        Assert.That(calls, Is.EqualTo(1));
        foreach (ArrayBufferWriter<byte> d in destinations)
        {
            Assert.That(Encoding.ASCII.GetString(d.WrittenSpan), Is.EqualTo("async value"));
        }
        Assert.That(await cache.GetOrAddAsync(key, 0, (k, s, w, ct) => throw new InvalidOperationException("not called on a hit"), new ArrayBufferWriter<byte>()), Is.True);
    }

    [Test]
    public void GetOrAddAsyncThrowingFactoryCachesNothing()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(5);
        Assert.That(async () => await cache.GetOrAddAsync(key, 0, (k, s, w, ct) => throw new FormatException("bad"), new ArrayBufferWriter<byte>()),
            Throws.InstanceOf<FormatException>());
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public void GetOrAddAsyncHonoursCancellationBeforeTheFactoryRuns()
    {
        using OffHeapCache cache = Create();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        bool ran = false;
        Assert.That(async () => await cache.GetOrAddAsync(TestKeys.Key(6), 0, (k, s, w, ct) => { ran = true; return ValueTask.CompletedTask; }, new ArrayBufferWriter<byte>(), cancellationToken: cts.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(ran, Is.False);
    }

    [Test]
    public void ALeaderCancelledAfterItsFactoryReturnedStillStoresAndSharesTheValue()
    {
        // The value is made: discarding it would make a waiter run the factory again.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(9);
        using var cts = new CancellationTokenSource();
        var destination = new ArrayBufferWriter<byte>();
        bool fromCache = cache.GetOrAdd(key, cts, static (k, c, w) =>
        {
            w.Write("made"u8);
            c.Cancel();   // cancelled after the work is done
        }, destination, cancellationToken: cts.Token);
        Assert.That(fromCache, Is.False);
        Assert.That(Encoding.ASCII.GetString(destination.WrittenSpan), Is.EqualTo("made"));
        Assert.That(cache.ContainsKey(key), Is.True, "stored");
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public void AFactoryAskingForItsOwnKeyOnItsThreadThrowsInsteadOfWaitingForever()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(10);
        var ex = Assert.Throws<InvalidOperationException>(() => cache.GetOrAdd(key, cache, static (k, c, w) =>
            c.GetOrAdd(k, 0, static (_, _, inner) => inner.Write("inner"u8), w), new ArrayBufferWriter<byte>()));
        Assert.That(ex!.Message, Does.Contain("from inside that key's own factory"));
        Assert.That(cache.FlightCount, Is.Zero);
        Assert.That(cache.ContainsKey(key), Is.False);
        // The same through the asynchronous API, waited on synchronously inside the factory.
        Assert.Throws<InvalidOperationException>(() => cache.GetOrAdd(key, cache, static (k, c, w) =>
            c.GetOrAddAsync(k.ToArray(), 0, static (_, _, inner, _) => { inner.Write("inner"u8); return ValueTask.CompletedTask; }, w).AsTask().GetAwaiter().GetResult(),
            new ArrayBufferWriter<byte>()));
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public async Task AnAsyncFactoryAwaitingItsOwnKeyThrowsInsteadOfWaitingForever()
    {
        // The factory yields first, so it continues on a pool thread: a thread id cannot recognise it, the flow can.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(11);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrAddAsync(key, cache, static async (k, c, w, ct) =>
        {
            await Task.Yield();
            await c.GetOrAddAsync(k.ToArray(), 0, static (_, _, inner, _) => { inner.Write("inner"u8); return ValueTask.CompletedTask; }, w, cancellationToken: ct);
        }, new ArrayBufferWriter<byte>()));
        Assert.That(ex!.Message, Does.Contain("from inside that key's own factory"));
        Assert.That(cache.FlightCount, Is.Zero);

        // Afterwards the key works normally (the flow's record of running factories was restored).
        var destination = new ArrayBufferWriter<byte>();
        Assert.That(await cache.GetOrAddAsync(key, 0, static (_, _, w, _) => { w.Write("ok"u8); return ValueTask.CompletedTask; }, destination), Is.False);
        Assert.That(Encoding.ASCII.GetString(destination.WrittenSpan), Is.EqualTo("ok"));
    }

    [Test]
    public void AChainOfFactoriesThatComesBackToItsFirstKeyThrows()
    {
        // K's factory asks for L, and L's factory asks for K: without the check, K's flight waits for L's and
        // L's waits for K's, forever.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(12), l = TestKeys.Key(13);
        Assert.Throws<InvalidOperationException>(() => cache.GetOrAdd(k, (cache, l), static (kk, s, w) =>
            s.cache.GetOrAdd(s.l, (s.cache, kk.ToArray()), static (_, t, w2) =>
                t.cache.GetOrAdd(t.Item2, 0, static (_, _, w3) => w3.Write("x"u8), w2), w), new ArrayBufferWriter<byte>()));
        Assert.That(cache.FlightCount, Is.Zero);
        Assert.That(cache.ContainsKey(k) || cache.ContainsKey(l), Is.False, "nothing stored by the failed chain");
    }

    /// <summary>
    /// Flows 0..n-1 each lead key i; once all factories run, factory i asks for key i+1 (mod n). Every flow waits
    /// for the next: a cycle no single flow's chain shows.
    /// </summary>
    private static Exception?[] RunCrossFlowCycle(OffHeapCache cache, int n)
    {
        byte[][] keys = [.. Enumerable.Range(0, n).Select(i => TestKeys.Key(100 + i))];
        using var allInside = new CountdownEvent(n);
        var errors = new Exception?[n];
        Task[] flows = [.. Enumerable.Range(0, n).Select(i => Task.Factory.StartNew(() =>
        {
            try
            {
                cache.GetOrAdd(keys[i], 0, (_, _, w) =>
                {
                    allInside.Signal();
                    allInside.Wait();
                    cache.GetOrAdd(keys[(i + 1) % n], 0, static (_, _, inner) => inner.Write("inner"u8), w);
                }, new ArrayBufferWriter<byte>());
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))];
        Assert.That(Task.WaitAll(flows, TimeSpan.FromSeconds(20)), Is.True, "the flows waiting for each other in a cycle must not wait forever");
        Assert.That(cache.FlightCount, Is.Zero);
        Assert.That(keys.Any(key => cache.ContainsKey(key)), Is.False, "nothing stored by the failed factories");
        return errors;
    }

    [TestCase(2)]
    [TestCase(3)]
    public void FactoriesOfDifferentCallersWaitingForEachOtherThrowInsteadOfWaitingForever(int flows)
    {
        using OffHeapCache cache = Create();
        Exception?[] errors = RunCrossFlowCycle(cache, flows);
        // Each flow fails: one finds the cycle, the others get its exception through the flight they wait for.
        Assert.That(errors, Has.All.InstanceOf<InvalidOperationException>());
        Assert.That(errors.Select(e => e!.Message), Has.Some.Contains("would wait forever"));
        // Afterwards the keys work normally.
        var destination = new ArrayBufferWriter<byte>();
        Assert.That(cache.GetOrAdd(TestKeys.Key(100), 0, static (_, _, w) => w.Write("ok"u8), destination), Is.False);
        Assert.That(Encoding.ASCII.GetString(destination.WrittenSpan), Is.EqualTo("ok"));
    }

    [Test]
    public async Task AsyncFactoriesOfDifferentCallersWaitingForEachOtherThrowInsteadOfWaitingForever()
    {
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(110), l = TestKeys.Key(111);
        var bothInside = new TaskCompletionSource[] { new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously) };
        async Task<Exception?> Flow(byte[] own, byte[] other, int me)
        {
            try
            {
                await cache.GetOrAddAsync(own, 0, async (_, _, w, ct) =>
                {
                    bothInside[me].SetResult();
                    await bothInside[1 - me].Task;
                    await Task.Yield();
                    await cache.GetOrAddAsync(other, 0, static (_, _, inner, _) => { inner.Write("inner"u8); return ValueTask.CompletedTask; }, w, cancellationToken: ct);
                }, new ArrayBufferWriter<byte>());
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        }
        Task<Exception?> a = Flow(k, l, 0), b = Flow(l, k, 1);
        Task all = Task.WhenAll(a, b);
        Assert.That(await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(20))), Is.SameAs(all), "must not wait forever");
        Assert.That(new[] { await a, await b }, Has.All.InstanceOf<InvalidOperationException>());
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public void AFactoryWaitingLongForAnotherCallersFactoryIsNotACycle()
    {
        // A's factory waits for L while B's factory for L takes several check intervals and asks for nothing:
        // no cycle, so A gets L's value and stores its own.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(120), l = TestKeys.Key(121);
        using var bLeads = new ManualResetEventSlim();
        Task b = Task.Factory.StartNew(() => cache.GetOrAdd(l, bLeads, static (_, started, w) =>
        {
            started.Set();
            Thread.Sleep(400);
            w.Write("slow"u8);
        }, new ArrayBufferWriter<byte>()), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        bLeads.Wait();
        var destination = new ArrayBufferWriter<byte>();
        Assert.That(cache.GetOrAdd(k, cache, (_, c, w) =>
        {
            var inner = new ArrayBufferWriter<byte>();
            c.GetOrAdd(l, 0, static (_, _, x) => x.Write("not run"u8), inner);
            w.Write(inner.WrittenSpan);
        }, destination), Is.False);
        Assert.That(Encoding.ASCII.GetString(destination.WrittenSpan), Is.EqualTo("slow"));
        Assert.That(b.Wait(TimeSpan.FromSeconds(20)), Is.True);
        Assert.That(cache.ContainsKey(k) && cache.ContainsKey(l), Is.True);
    }

    [Test]
    public async Task AnAsyncWaiterInsideAFactoryGetsTheTimeoutExceptionOfTheFlightItWaitsFor()
    {
        // The cycle check waits in intervals and catches the interval's TimeoutException; a factory's own
        // TimeoutException (a database timeout) from the finished flight must propagate, not loop forever.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(130), l = TestKeys.Key(131);
        var lLeads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task lFlow = Task.Run(async () =>
        {
            try
            {
                await cache.GetOrAddAsync(l, 0, async (_, _, _, _) =>
                {
                    lLeads.SetResult();
                    await release.Task;
                    throw new TimeoutException("the database timed out");
                }, new ArrayBufferWriter<byte>());
            }
            catch (TimeoutException)
            {
            }
        });
        await lLeads.Task;
        var kJoins = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<Exception?> kFlow = Task.Run(async () =>
        {
            try
            {
                await cache.GetOrAddAsync(k, 0, async (_, _, w, ct) =>
                {
                    kJoins.SetResult();   // joining L's flight is synchronous from here
                    await cache.GetOrAddAsync(l, 0, static (_, _, x, _) => { x.Write("x"u8); return ValueTask.CompletedTask; }, w, cancellationToken: ct);
                }, new ArrayBufferWriter<byte>());
                return (Exception?)null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        await kJoins.Task;
        await Task.Delay(250);   // K's factory is waiting for L (past two check intervals)
        release.SetResult();
        await lFlow;
        Assert.That(await Task.WhenAny(kFlow, Task.Delay(TimeSpan.FromSeconds(20))), Is.SameAs(kFlow), "must not loop forever");
        Assert.That(await kFlow, Is.TypeOf<TimeoutException>());
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public async Task ACycleThroughFactoriesThatWaitForSeveralKeysAtOnceIsFound()
    {
        // Each factory waits for the other's key and for a slow unrelated key at once (Task.WhenAll): the
        // unrelated wait ends first, and the cycle must still be seen through the remaining wait.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(140), l = TestKeys.Key(141), x1 = TestKeys.Key(142), x2 = TestKeys.Key(143);
        using var slowLeads = new CountdownEvent(2);
        Task s1 = Task.Run(() => cache.GetOrAddAsync(x1, 0, async (_, _, w, _) => { slowLeads.Signal(); await Task.Delay(300); w.Write("x1"u8); }, new ArrayBufferWriter<byte>()).AsTask());
        Task s2 = Task.Run(() => cache.GetOrAddAsync(x2, 0, async (_, _, w, _) => { slowLeads.Signal(); await Task.Delay(300); w.Write("x2"u8); }, new ArrayBufferWriter<byte>()).AsTask());
        slowLeads.Wait();
        var inside = new[] { new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        async Task<Exception?> Flow(byte[] own, byte[] other, byte[] slow, int me)
        {
            try
            {
                await cache.GetOrAddAsync(own, 0, async (_, _, w, ct) =>
                {
                    inside[me].SetResult();
                    await inside[1 - me].Task;
                    var fromOther = new ArrayBufferWriter<byte>();
                    await Task.WhenAll(
                        cache.GetOrAddAsync(other, 0, static (_, _, i, _) => { i.Write("i"u8); return ValueTask.CompletedTask; }, fromOther, cancellationToken: ct).AsTask(),
                        cache.GetOrAddAsync(slow, 0, static (_, _, i, _) => { i.Write("i"u8); return ValueTask.CompletedTask; }, new ArrayBufferWriter<byte>(), cancellationToken: ct).AsTask());
                    w.Write(fromOther.WrittenSpan);
                }, new ArrayBufferWriter<byte>());
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        }
        Task<Exception?> a = Flow(k, l, x1, 0), b = Flow(l, k, x2, 1);
        Task all = Task.WhenAll(a, b, s1, s2);
        Assert.That(await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(20))), Is.SameAs(all), "must not wait forever");
        Assert.That(new[] { await a, await b }, Has.All.InstanceOf<InvalidOperationException>());
        Assert.That(cache.FlightCount, Is.Zero);
    }

    [Test]
    public async Task AFactoryThatGivesUpWaitingSoonIsNotReportedAsACycle()
    {
        // K's factory waits at most 300 ms for L, then writes a fallback; L's factory waits for K meanwhile. The
        // waits form a cycle for 300 ms only: both requests must succeed.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(150), l = TestKeys.Key(151);
        var kLeads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lLeads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<bool> kFlow = Task.Run(async () => await cache.GetOrAddAsync(k, 0, async (_, _, w, _) =>
        {
            kLeads.SetResult();
            await lLeads.Task;
            await Task.Delay(50);   // L's factory is waiting for K by now
            Task<bool> forL = cache.GetOrAddAsync(l, 0, static (_, _, i, _) => { i.Write("i"u8); return ValueTask.CompletedTask; }, new ArrayBufferWriter<byte>()).AsTask();
            await Task.WhenAny(forL, Task.Delay(300));
            w.Write("fallback"u8);
        }, new ArrayBufferWriter<byte>()));
        await kLeads.Task;
        var fromL = new ArrayBufferWriter<byte>();
        Task<bool> lFlow = Task.Run(async () => await cache.GetOrAddAsync(l, 0, async (_, _, w, ct) =>
        {
            lLeads.SetResult();
            await cache.GetOrAddAsync(k, 0, static (_, _, i, _) => { i.Write("i"u8); return ValueTask.CompletedTask; }, w, cancellationToken: ct);
        }, fromL));
        Task both = Task.WhenAll(kFlow, lFlow);
        Assert.That(await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(20))), Is.SameAs(both));
        Assert.That(await kFlow, Is.False);
        Assert.That(await lFlow, Is.False);
        Assert.That(Encoding.ASCII.GetString(fromL.WrittenSpan), Is.EqualTo("fallback"));
    }

    [Test]
    public async Task AnUnawaitedGetOrAddFromAFactoryThatEndsSoonIsNotReportedAsACycle()
    {
        // K's factory starts a GetOrAdd of L without awaiting it (a prefetch) and works on for 2.5 s while L's
        // factory waits for K: the edges show a cycle (the prefetch carries K's flow), but K finishes by itself,
        // within the ~5 s a cycle must last to be reported. Both requests succeed.
        using OffHeapCache cache = Create();
        byte[] k = TestKeys.Key(160), l = TestKeys.Key(161);
        var lLeads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var kLeads = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<bool>? prefetch = null;
        var fromL = new ArrayBufferWriter<byte>();
        Task<bool> lFlow = Task.Run(async () => await cache.GetOrAddAsync(l, 0, async (_, _, w, ct) =>
        {
            lLeads.SetResult();
            await kLeads.Task;
            await cache.GetOrAddAsync(k, 0, static (_, _, i, _) => { i.Write("i"u8); return ValueTask.CompletedTask; }, w, cancellationToken: ct);
        }, fromL));
        await lLeads.Task;
        Task<bool> kFlow = Task.Run(async () => await cache.GetOrAddAsync(k, 0, async (_, _, w, _) =>
        {
            kLeads.SetResult();
            await Task.Delay(150);
            prefetch = cache.GetOrAddAsync(l, 0, static (_, _, i, _) => { i.Write("p"u8); return ValueTask.CompletedTask; }, new ArrayBufferWriter<byte>()).AsTask();
            await Task.Delay(2500);
            w.Write("k"u8);
        }, new ArrayBufferWriter<byte>()));
        Task both = Task.WhenAll(lFlow, kFlow);
        Assert.That(await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(20))), Is.SameAs(both));
        Assert.That(await lFlow, Is.False, "L's factory waited for K, which finished by itself");
        Assert.That(Encoding.ASCII.GetString(fromL.WrittenSpan), Is.EqualTo("k"));
        Assert.That(await prefetch!, Is.False, "the prefetch got L's value");
    }
}
