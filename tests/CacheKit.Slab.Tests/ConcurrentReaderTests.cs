using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

/// <summary>
/// GetPointer / GetBytesToPageEnd from other threads while the owner allocates, frees and reclaims: for any handle
/// ever handed out (even freed, even after its page was re-cut) the result lies inside an allocated page.
/// </summary>
public unsafe class ConcurrentReaderTests
{
    private const int Page = 1 << 16;

    [Test]
    public void Readers_resolve_any_handle_ever_handed_out_to_bytes_inside_its_page()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 16L * Page, PageSize = Page });
        SlabArena owner = pool.CreateArena();
        SlabArena other = pool.CreateArena();
        var everHandedOut = new ulong[1 << 16];
        int published = 0;
        bool stop = false;
        long reads = 0;
        Exception? readerFailure = null;

        var readers = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            var rng = new Random(r);
            try
            {
                while (!Volatile.Read(ref stop))
                {
                    int n = Volatile.Read(ref published);
                    if (n == 0)
                    {
                        continue;
                    }

                    var h = SlabHandle.FromValue(Volatile.Read(ref everHandedOut[rng.Next(n)]));
                    SlabArena via = (r & 1) == 0 ? owner : other; // any arena of the pool resolves any handle
                    byte* p = via.GetPointer(h);
                    int toEnd = via.GetBytesToPageEnd(h);
                    byte* pageStart = p - h.ByteOffset;
                    if ((long)p % 8 != 0 || toEnd < 8 || toEnd > Page || h.ByteOffset + toEnd != Page || (long)pageStart % 64 != 0)
                    {
                        throw new InvalidOperationException($"bad resolution of {h}: toEnd {toEnd}");
                    }

                    // Read the first and last byte the reader may touch: both inside the page.
                    _ = Volatile.Read(ref *p);
                    _ = Volatile.Read(ref p[toEnd - 1]);
                    Interlocked.Increment(ref reads);
                }
            }
            catch (Exception e)
            {
                readerFailure = e;
            }
        })).ToArray();
        foreach (Thread t in readers)
        {
            t.Start();
        }

        var rng = new Random(99);
        var live = new List<SlabHandle>();
        var scratch = new SlabHandle[pool.MaxChunksPerPage];
        for (int step = 0; step < 40_000 && readerFailure is null; step++)
        {
            int size = step / 5000 % 2 == 0 ? rng.Next(16, 200) : rng.Next(1000, 9000);
            if (owner.TryAllocate(size, out SlabHandle h))
            {
                live.Add(h);
                if (published < everHandedOut.Length)
                {
                    Volatile.Write(ref everHandedOut[published], h.Value);
                    Volatile.Write(ref published, published + 1);
                }
            }
            else if (owner.TryPickPageToReclaim(pool.Classes.ClassOf(size), out int page))
            {
                int n = owner.GetLiveChunks(page, scratch);
                for (int i = 0; i < n; i++)
                {
                    owner.Free(scratch[i]);
                    live.Remove(scratch[i]);
                }
            }
            else if (live.Count > 0)
            {
                int i = rng.Next(live.Count);
                owner.Free(live[i]);
                live[i] = live[^1];
                live.RemoveAt(live.Count - 1);
            }
        }

        Volatile.Write(ref stop, true);
        foreach (Thread t in readers)
        {
            t.Join();
        }

        Assert.That(readerFailure, Is.Null, readerFailure?.ToString());
        Assert.That(Interlocked.Read(ref reads), Is.Positive);
        pool.ValidateInvariants();
        TestContext.Out.WriteLine($"{published} handles published, {reads} concurrent resolutions");
    }
}
