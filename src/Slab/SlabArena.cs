using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace CacheKit.Slab;

/// <summary>
/// A single-owner chunk allocator over pages of a shared <see cref="SlabPool"/> (one arena per shard).
/// </summary>
/// <remarks>
/// <para><b>Thread-safety contract.</b> NOT thread-safe: one owner serialises every call (the engine's shard
/// lock), except <see cref="GetPointer"/> and <see cref="GetBytesToPageEnd"/>, which any thread may call at
/// any time before the pool is disposed, for any handle this pool ever handed out. Page acquisition and
/// release go through the pool, which is thread-safe, so arenas of one pool run in parallel.</para>
/// <para><b>Layout.</b> A page cut to class <c>c</c> holds <c>PageSize / size(c)</c> chunks at offsets
/// <c>i * size(c)</c>; pages are 64-byte aligned and sizes multiples of 8, so every chunk is 8-byte aligned.
/// Per page: a bump index (chunks never cut yet), an intrusive free list of freed chunks (the link is the
/// first 4 bytes of the freed chunk, which therefore change when a chunk is freed) and a bitmap of live
/// chunks (the bitmap makes double frees and foreign handles detectable in every build).</para>
/// <para><b>Page lists.</b> Each page the arena holds is in exactly one list: its class's "partial" list
/// (has a free chunk; allocation takes the head) or "full" list, except the one page being reclaimed (in
/// none). A page that becomes empty goes back to the pool, except that each class keeps at most one empty
/// page (the "spare", at the tail of its partial list) so that alternating allocate/free does not bounce
/// pages through the pool's lock.</para>
/// <para><b>Rebalancing (no calcification).</b> When a class needs memory and the pool has none, the owner calls
/// <see cref="TryPickPageToReclaim"/>, lists the page's live chunks with <see cref="GetLiveChunks(int, Span{SlabHandle})"/>, evicts and
/// frees each; when the last one is freed the page goes back to the pool, ready for any class. A page moves only
/// towards a class below its fair share of pages (its share of recent demand), from a class at least one page above
/// its share; otherwise TryPickPageToReclaim returns false and the owner evicts within the class.</para>
/// <para><b>Limits of detection.</b> Free and GetChunkSize reject handles of other arenas, handles that do not
/// name a chunk boundary of their page's current class, and chunks that are not live. A stale handle whose
/// chunk was freed and handed out again (or whose page was re-cut so that the same offset is again a live
/// chunk) cannot be told from the new owner's handle: keep a generation beside the handle (16 free bits).</para>
/// </remarks>
public sealed unsafe class SlabArena
{
    private const int None = SlabPool.None;

    /// <summary>The byte freed memory is filled with in poison mode (<see cref="SlabOptions.PoisonFreedMemory"/>).</summary>
    internal const byte PoisonByte = 0xDB;

    // Demand counters are halved each time a quarter of the held page bytes has been allocated (or rewritten in place,
    // TryKeepChunkFor): they weigh roughly the last half turnover of the arena's memory, so a shifted mix wins its pages
    // within a turnover.
    private const int DemandWindowDivisor = 4;

    // Pages a class must be below its fair share to receive a page, and above it to give one (see TryPickPageToReclaim).
    private const double ShareMargin = 0.5;

    private readonly SlabPool _pool;
    private readonly int _id;
    private readonly SizeClassTable _classes;
    private readonly int _pageSize;
    private readonly int _maxPages;
    private readonly int _maxChunkSize;
    private readonly bool _poison;   // SlabOptions.PoisonFreedMemory (test mode)

    // Per-class state (see ClassState for each field's invariant).
    private readonly ClassState[] _cls;

    // The pool's page table and per-page arrays (this arena writes the entries of the pages it holds).
    private readonly nint[] _pageBase;
    private readonly PageState[] _pages;

    // Page lists: list 2c = class c's partial pages, 2c + 1 = its full pages. None-terminated, doubly linked
    // through _pages[p].Prev / .Next; _pages[p].List names the list holding p.
    private readonly int[] _head;
    private readonly int[] _tail;

    // Invariant: _recentDemandTotal == sum of _cls[c].RecentDemand.
    private long _recentDemandTotal;

    // The page handed out by TryPickPageToReclaim whose live chunks are being freed, or None. It is in no
    // list, so nothing is allocated from it; it returns to the pool when its last chunk is freed.
    private int _reclaimPage = None;

    // Pages this arena holds (in lists or being reclaimed).
    private int _pagesHeld;

    // Demand counters halve when _recentDemandTotal exceeds this: max(_pagesHeld, 1) * PageSize / DemandWindowDivisor.
    private long _demandWindowBytes;

    internal SlabArena(SlabPool pool, int id)
    {
        _pool = pool;
        _id = id;
        _classes = pool.Classes;
        _pageSize = pool.PageSize;
        _maxPages = pool.MaxPages;
        _maxChunkSize = _classes.MaxChunkSize;
        _poison = pool.PoisonFreedMemory;
        int count = _classes.Count;
        _cls = new ClassState[count];
        for (int c = 0; c < count; c++)
        {
            int size = _classes[c];
            _cls[c] = new ClassState
            {
                ChunkSize = size,
                Capacity = _pageSize / size,
                DivideMagic = (ulong.MaxValue / (uint)size) + 1,
                Spare = None,
            };
        }

        _pageBase = pool.PageBase;
        _pages = pool.Pages;

        _head = new int[2 * count];
        _tail = new int[2 * count];
        Array.Fill(_head, None);
        Array.Fill(_tail, None);
        _demandWindowBytes = DemandWindowFor(0);
    }

    /// <summary>The pool this arena takes pages from.</summary>
    public SlabPool Pool => _pool;

    /// <summary>The size classes (the pool's).</summary>
    public SizeClassTable Classes => _classes;

    /// <summary>Most chunks one page can hold: the span size that always suffices for <see cref="GetLiveChunks(int, Span{SlabHandle})"/>.</summary>
    public int MaxChunksPerPage => _pool.MaxChunksPerPage;

    /// <summary>Pages this arena holds now (0 once the pool is disposed: Dispose freed them all).</summary>
    public int PagesHeld => _pool.IsDisposed ? 0 : _pagesHeld;

    internal long FootprintBytes => ((long)_cls.Length * Unsafe.SizeOf<ClassState>()) + (((long)_head.Length + _tail.Length) * sizeof(int));

    /// <summary>
    /// Allocates a chunk of at least <paramref name="size"/> bytes: a free chunk of the class, else a page from the
    /// pool within the budget (cut to the class), else returns false (then make room, e.g. with
    /// <see cref="TryPickPageToReclaim"/>). Allocates nothing on the managed heap.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">size &lt;= 0 or size &gt; <see cref="SizeClassTable.MaxChunkSize"/>.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    /// <exception cref="InvalidOperationException">The page's free list was corrupted (a freed chunk was written to after Free).</exception>
    public bool TryAllocate(int size, out SlabHandle handle)
    {
        _pool.ThrowIfDisposed();
        if ((uint)(size - 1) >= (uint)_maxChunkSize)
        {
            ThrowHelper.ThrowSizeOutOfRange(size, _maxChunkSize);
        }

        int c = _classes.ClassOfUnchecked(size);
        ref ClassState cls = ref _cls[c];
        int chunk = cls.ChunkSize;
        int page = _head[2 * c];
        if (page == None)
        {
            if (!_pool.TryAcquirePage(_id, c, out page))
            {
                handle = default;
                return false;
            }

            cls.Pages++;
            _pagesHeld++;
            _demandWindowBytes = DemandWindowFor(_pagesHeld);
            LinkFirst(2 * c, page);
            if (_poison)
            {
                Poison(page, 0, _pageSize);
            }
        }

        ref PageState ps = ref _pages[page];
        ulong[] bits = ps.Bitmap!;
        int index;
        if (ps.FreeHead != 0)
        {
            index = ps.FreeHead - 1;
            // SAFETY: index < ps.Bump <= capacity (checked when the link was stored or read), so the 4 bytes at
            // index * chunk lie inside the page; the page is allocated (pool not disposed) and held by this arena.
            int next = *(int*)((byte*)_pageBase[page] + ((long)index * chunk));
            // Invariant: FreeHead is 0 or names a cut chunk that is not live. The new head must be cut, not live,
            // and not the chunk handed out now (a link naming itself is not live yet, but becomes the live head).
            if ((uint)next > (uint)ps.Bump || next == index + 1 || (next != 0 && (bits[(next - 1) >> 6] & (1UL << (next - 1))) != 0))
            {
                ThrowFreeListCorrupted(page);
            }

            ps.FreeHead = next;
        }
        else
        {
            // A partial page with an empty free list has uncut chunks (free + live == cut), unless a write after
            // free cut its list short (a link overwritten with 0 or with a later chunk's): the chunks it skipped
            // are lost. Cutting one more would then name a chunk at or past the page end (capacity * size +
            // size > PageSize): refuse instead, changing nothing.
            if (ps.Bump >= cls.Capacity)
            {
                ThrowFreeListCorrupted(page);
            }

            index = ps.Bump++;
        }

        Debug.Assert((bits[index >> 6] & (1UL << index)) == 0, "a free chunk is not live");
        if (_poison)
        {
            CheckPoison(page, index * chunk, chunk);
        }

        bits[index >> 6] |= 1UL << index;
        if (++ps.Live == cls.Capacity)
        {
            Unlink(page);
            LinkFirst((2 * c) + 1, page);
        }

        if (cls.Spare == page)
        {
            cls.Spare = None;
        }

        cls.Live++;
        cls.Allocations++;
        cls.HandedOutTotal += chunk;
        cls.RequestedTotal += size;

        // Demand counts served allocations (and in-place rewrites) only: counting failed attempts too would inflate the
        // share of a class that is evicting within itself (each of its allocations retried) and make pages chase it
        // back and forth.
        CountDemand(c);

        handle = SlabHandle.Create(page, index * chunk);
        return true;
    }

    /// <summary>
    /// Whether live chunk <paramref name="handle"/> is of the class an allocation of <paramref name="size"/> bytes would
    /// take, so that its owner may write an entry of that size over the one it holds instead of allocating (the engine's
    /// in-place update). If so the rewrite counts as that class's demand, as the allocation would have: the fair share
    /// of pages (<see cref="TryPickPageToReclaim"/>) follows the bytes written, and a class whose entries are only ever
    /// updated would otherwise look idle and lose its pages. Not an allocation: the allocation counters do not move.
    /// </summary>
    /// <exception cref="InvalidOperationException">The handle is not a live chunk of this arena.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    internal bool TryKeepChunkFor(SlabHandle handle, int size)
    {
        _pool.ThrowIfDisposed();
        ResolveLive(handle, out int c, out _);
        if ((uint)(size - 1) >= (uint)_maxChunkSize || _classes.ClassOfUnchecked(size) != c)
        {
            return false;
        }

        CountDemand(c);
        return true;
    }

    /// <summary>A chunk of class <paramref name="c"/> served (allocated or kept for a rewrite): its bytes count as the class's
    /// recent demand.</summary>
    private void CountDemand(int c)
    {
        int chunk = _cls[c].ChunkSize;
        _cls[c].RecentDemand += chunk;
        _recentDemandTotal += chunk;
        if (_recentDemandTotal > _demandWindowBytes)
        {
            DecayDemand();
        }
    }

    /// <summary>
    /// Frees a chunk this arena handed out. Its first 4 bytes become a free-list link; the page stays readable.
    /// </summary>
    /// <remarks>A handle names a page of the pool and an offset in it, not the pool: a handle of another pool that happens to
    /// name a live chunk of this arena (the same page number and offset) frees that chunk. Keep each handle with the pool
    /// that made it.</remarks>
    /// <exception cref="InvalidOperationException">
    /// The handle is not a live chunk of this arena (double free, another arena's handle, a handle of another pool that names
    /// no live chunk here, not a chunk boundary); nothing is changed.
    /// </exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public void Free(SlabHandle handle)
    {
        _pool.ThrowIfDisposed();
        int page = ResolveLive(handle, out int c, out int index);
        ref ClassState cls = ref _cls[c];
        ref PageState ps = ref _pages[page];
        ps.Bitmap![index >> 6] &= ~(1UL << index);
        // SAFETY: ResolveLive proved index < ps.Bump <= capacity, so [index * chunk, +4) lies inside the page,
        // which is allocated (pool not disposed) and held by this arena.
        *(int*)((byte*)_pageBase[page] + ((long)index * cls.ChunkSize)) = ps.FreeHead;
        ps.FreeHead = index + 1;
        if (_poison)
        {
            Poison(page, (index * cls.ChunkSize) + sizeof(int), cls.ChunkSize - sizeof(int));
        }

        int live = --ps.Live;
        cls.Live--;

        if (page == _reclaimPage)
        {
            if (live == 0)
            {
                _reclaimPage = None;
                ReleaseToPool(page, c);
            }

            return;
        }

        if (ps.List == (2 * c) + 1)
        {
            // It was full: it has a free chunk again.
            Unlink(page);
            LinkFirst(2 * c, page);
        }

        if (live == 0)
        {
            if (cls.Spare == None)
            {
                // Keep it as the class's spare, at the tail of the partial list (allocation fills other pages first).
                cls.Spare = page;
                if (_tail[2 * c] != page)
                {
                    Unlink(page);
                    LinkLast(2 * c, page);
                }
            }
            else
            {
                Unlink(page);
                ReleaseToPool(page, c);
            }
        }
    }

    /// <summary>The chunk size (bytes usable) of a live chunk of this arena.</summary>
    /// <exception cref="InvalidOperationException">The handle is not a live chunk of this arena.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public int GetChunkSize(SlabHandle handle)
    {
        _pool.ThrowIfDisposed();
        ResolveLive(handle, out int c, out _);
        return _cls[c].ChunkSize;
    }

    /// <summary>
    /// The address of the chunk <paramref name="handle"/> names. Any thread, any time before Dispose, for any handle
    /// this pool ever handed out (even freed, even after its page was re-cut): the result lies inside an allocated
    /// page, 8-byte aligned; read at most <see cref="GetBytesToPageEnd"/> bytes from it. The bytes of a freed
    /// chunk may change at any time: validate what you read.
    /// </summary>
    /// <exception cref="ArgumentException">The handle names no allocated page or an offset beyond the page size.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* GetPointer(SlabHandle handle)
    {
        int offset = ResolveAnyPage(handle, out nint pageBase);
        // SAFETY: offset < PageSize and pageBase is an allocated page of PageSize bytes (ResolveAnyPage).
        return (byte*)pageBase + offset;
    }

    /// <summary>Bytes from <see cref="GetPointer"/>'s result to the end of its page (&gt;= 8). Same rules as GetPointer.</summary>
    /// <exception cref="ArgumentException">The handle names no allocated page or an offset beyond the page size.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int GetBytesToPageEnd(SlabHandle handle) => _pageSize - ResolveAnyPage(handle, out _);

    /// <summary>
    /// The lock-free reader's form of <see cref="GetPointer"/> and <see cref="GetBytesToPageEnd"/> in one page-table
    /// read, without the disposed check: the address of the chunk <paramref name="handleValue"/> (a
    /// <see cref="SlabHandle.Value"/>) names and, in <paramref name="bytesToPageEnd"/>, how many bytes may be read from
    /// it. When the handle names no allocated page, or an offset at or past the page end, bytesToPageEnd is ≤ 0 and
    /// nothing may be read (so a caller that reads at most bytesToPageEnd bytes stays inside a live page for any
    /// value at all, not only for handles this pool issued).
    /// </summary>
    /// <remarks>
    /// The caller must guarantee that the pool is not disposed and will not be while it reads (the engine's
    /// Enter/Exit protocol: <c>OffHeapCache.Dispose</c> waits until no operation is inside before it disposes the
    /// pool); a Debug build asserts it. A value whose page field is 0 or beyond <see cref="SlabPool.MaxPages"/>
    /// throws <see cref="IndexOutOfRangeException"/> from the page-table bounds check (the engine never passes one:
    /// it reads only non-zero slot words, each written from a handle this arena allocated).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* ResolveForReader(ulong handleValue, out int bytesToPageEnd)
    {
        Debug.Assert(!_pool.IsDisposed, "ResolveForReader after the pool was disposed: the caller's lifetime protocol is broken");
        int page = (int)((handleValue >> SlabHandle.PageShift) & SlabHandle.PageMask) - 1;
        int offset = (int)((handleValue >> SlabHandle.OffsetShift) & SlabHandle.OffsetMask) << SlabHandle.OffsetGranularityShift;
        // The array's own bounds check keeps the page index inside the table; a page never allocated reads as 0.
        nint pageBase = Volatile.Read(ref _pageBase[page]);
        bytesToPageEnd = pageBase == 0 ? 0 : _pageSize - offset;
        // SAFETY: no byte is read here; the caller reads at most bytesToPageEnd (> 0 only for an allocated page and
        // an offset below its end) bytes from the result, inside the page, which lives until the pool is disposed.
        return (byte*)pageBase + offset;
    }

    /// <summary>
    /// Gives the spare empty page of a class other than <paramref name="forClassIndex"/> back to the pool, so that an
    /// allocation for that class can take a page without evicting anything. The first thing to try when a class has no
    /// free chunk and the budget allows no new page: an idle empty page costs nothing to give up, while the alternatives
    /// evict live entries (before this, up to a whole round of policy victims went first: 16 live entries evicted for
    /// one set while another class's empty page sat idle; found by review).
    /// </summary>
    /// <returns>Whether a spare was released (<paramref name="pageId"/>: its id, now the pool's).</returns>
    /// <exception cref="ArgumentOutOfRangeException">forClassIndex is not a class index.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public bool TryReleaseForeignSpare(int forClassIndex, out int pageId)
    {
        _pool.ThrowIfDisposed();
        if ((uint)forClassIndex >= (uint)_classes.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(forClassIndex), forClassIndex, $"forClassIndex must be in [0, {_classes.Count - 1}] (Classes.Count - 1).");
        }
        return ReleaseForeignSpare(forClassIndex, out pageId);
    }

    /// <summary><see cref="TryReleaseForeignSpare"/> with its argument checked by the caller.</summary>
    private bool ReleaseForeignSpare(int forClassIndex, out int pageId)
    {
        for (int c = 0; c < _cls.Length; c++)
        {
            int spare = _cls[c].Spare;
            if (c != forClassIndex && spare != None)
            {
                _cls[c].Spare = None;
                Unlink(spare);
                ReleaseToPool(spare, c);
                pageId = spare;
                return true;
            }
        }
        pageId = None;
        return false;
    }

    /// <summary>
    /// Picks a page of this arena cut to a class other than <paramref name="forClassIndex"/> to empty, so its memory
    /// can serve the class that needs it. Preference: a class's spare empty page (given back to the pool at once;
    /// <see cref="GetLiveChunks(int, Span{SlabHandle})"/> then returns 0); else, if <paramref name="forClassIndex"/> holds no page, or
    /// at least half a page less than its fair share (pages held * its part of recent demand, in chunk bytes allocated
    /// over about the last half turnover of the arena's memory), the page with the fewest live chunks in the class
    /// furthest (and at least half a page) above its share; a class with no page takes one only from a class holding
    /// two or more. Returns false otherwise: then evict within the class. Once a page is picked nothing is allocated
    /// from it; the caller evicts and <see cref="Free"/>s every chunk <see cref="GetLiveChunks(int, Span{SlabHandle})"/>
    /// lists, and the last Free returns the page to the pool. While a picked page still has live chunks, every call
    /// returns that same page again.
    /// Cost: O(classes + pages of the chosen class).
    /// </summary>
    /// <returns>False if no page should move: evict an entry of the class instead.</returns>
    /// <exception cref="ArgumentOutOfRangeException">forClassIndex is not a class index.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public bool TryPickPageToReclaim(int forClassIndex, out int pageId)
    {
        CheckReclaimArguments(forClassIndex);
        if (TryPendingOrForeignSpare(forClassIndex, out pageId))
        {
            return true;
        }

        // Fair share: a class deserves pages in proportion to its recent demand (share = pages held * its part of
        // the demand). Move a page only to a class at least half a page below its share (or with no page at
        // all), from the class furthest above its share and at least half a page above it; otherwise the caller
        // should evict within the class. The two half-page margins add up to the one page of hysteresis that
        // keeps two classes of a steady mix from passing a page back and forth (each move costs a page of
        // evictions): after a move neither class is on the other side of its share by half a page.
        double pagesPerDemandByte = _recentDemandTotal == 0 ? 0 : (double)_pagesHeld / _recentDemandTotal;
        int needyPages = _cls[forClassIndex].Pages;
        bool hasNoPage = needyPages == 0;
        if (!hasNoPage && needyPages + ShareMargin > _cls[forClassIndex].RecentDemand * pagesPerDemandByte)
        {
            pageId = None;
            return false;
        }

        // A class with no page gets one from the class furthest above its share among those holding at least two
        // pages (taking another class's only page would just start a chain of classes taking it back). Otherwise
        // the victim must be at least half a page above its share.
        int victimClass = None;
        double victimExcess = hasNoPage ? double.NegativeInfinity : ShareMargin - 1e-9;
        for (int c = 0; c < _cls.Length; c++)
        {
            ref ClassState cls = ref _cls[c];
            if (c == forClassIndex || cls.Pages < (hasNoPage ? 2 : 1))
            {
                continue;
            }

            double excess = cls.Pages - (cls.RecentDemand * pagesPerDemandByte);
            if (excess > victimExcess)
            {
                victimClass = c;
                victimExcess = excess;
            }
        }

        if (victimClass == None)
        {
            pageId = None;
            return false;
        }

        int best = FewestLivePage(victimClass, int.MaxValue, None);
        Debug.Assert(best != None && _pages[best].Live > 0, "a class with pages and no spare has a non-empty page");
        pageId = BeginReclaim(best);
        return true;
    }

    private void CheckReclaimArguments(int forClassIndex)
    {
        _pool.ThrowIfDisposed();
        if ((uint)forClassIndex >= (uint)_classes.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(forClassIndex), forClassIndex, $"forClassIndex must be in [0, {_classes.Count - 1}] (Classes.Count - 1).");
        }
    }

    /// <summary>What every page pick answers first: the page still being reclaimed (until it is empty), else another
    /// class's spare empty page, given back to the pool at once.</summary>
    private bool TryPendingOrForeignSpare(int forClassIndex, out int pageId)
    {
        if (_reclaimPage != None)
        {
            pageId = _reclaimPage;
            return true;
        }

        return ReleaseForeignSpare(forClassIndex, out pageId);
    }

    /// <summary>The page of class <paramref name="c"/> with the fewest live chunks, at most <paramref name="maxLive"/>,
    /// if it has fewer than page <paramref name="best"/> (or <paramref name="best"/> is None); else <paramref name="best"/>.</summary>
    private int FewestLivePage(int c, int maxLive, int best)
    {
        for (int list = 2 * c; list <= (2 * c) + 1; list++)
        {
            for (int p = _head[list]; p != None; p = _pages[p].Next)
            {
                if (_pages[p].Live <= maxLive && (best == None || _pages[p].Live < _pages[best].Live))
                {
                    best = p;
                }
            }
        }

        return best;
    }

    /// <summary>Marks <paramref name="page"/> as the page being reclaimed: off its class's lists, so nothing is allocated
    /// from it; the last <see cref="Free"/> of its chunks gives it back to the pool.</summary>
    private int BeginReclaim(int page)
    {
        Unlink(page);
        _reclaimPage = page;
        return page;
    }

    /// <summary>
    /// The last resort for a class that holds no page in this arena, once evictions within the fair-share rules of
    /// <see cref="TryPickPageToReclaim"/> made no room (they give such a class a page only from a class holding two or
    /// more, so where every class in use holds one page it could never store anything): the page of another class
    /// with the fewest live chunks, whatever that class's share, if it holds at most <paramref name="maxLiveChunks"/> (the
    /// caller's cap on evictions for one insert). A class that holds a page gets nothing here (room comes from inside
    /// it, or the write is refused). A spare empty page is given back to the pool at once, as there.
    /// Same protocol as <see cref="TryPickPageToReclaim"/> (the caller evicts what
    /// <see cref="GetLiveChunks(int, Span{SlabHandle})"/> lists). Cost: O(classes + pages held).
    /// </summary>
    /// <returns>False when the class holds a page, or the arena holds no page of another class with at most maxLiveChunks live.</returns>
    /// <exception cref="ArgumentOutOfRangeException">forClassIndex is not a class index, or maxLiveChunks is below 1.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public bool TryPickPageForAClassWithNone(int forClassIndex, int maxLiveChunks, out int pageId)
    {
        CheckReclaimArguments(forClassIndex);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLiveChunks, 1);
        if (_cls[forClassIndex].Pages > 0)
        {
            pageId = None;
            return false;
        }

        if (TryPendingOrForeignSpare(forClassIndex, out pageId))
        {
            return true;
        }

        int best = None;
        for (int c = 0; c < _cls.Length; c++)
        {
            if (c != forClassIndex)
            {
                best = FewestLivePage(c, maxLiveChunks, best);
            }
        }

        if (best == None)
        {
            return false;
        }

        Debug.Assert(_pages[best].Live > 0, "with no spare left, every listed page has a live chunk");
        pageId = BeginReclaim(best);
        return true;
    }

    /// <summary>
    /// Writes handles of the live chunks of page <paramref name="pageId"/> into <paramref name="destination"/> and returns
    /// how many; 0 if this arena does not hold the page (for example a spare already given back to the pool).
    /// A span of <see cref="MaxChunksPerPage"/> always suffices.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">pageId is not a page id of this pool.</exception>
    /// <exception cref="ArgumentException">destination is shorter than the page's live chunk count.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public int GetLiveChunks(int pageId, Span<SlabHandle> destination)
    {
        _pool.ThrowIfDisposed();
        if ((uint)pageId >= (uint)_maxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(pageId), pageId, $"pageId must be in [0, {_maxPages - 1}] (the pool's MaxPages - 1).");
        }

        if (_pages[pageId].Owner != _id)
        {
            return 0;
        }

        int live = _pages[pageId].Live;
        if (destination.Length < live)
        {
            throw new ArgumentException($"destination holds {destination.Length} handles but page {pageId} has {live} live chunks; a span of MaxChunksPerPage ({MaxChunksPerPage}) always suffices.", nameof(destination));
        }

        int chunk = _cls[_pages[pageId].Class].ChunkSize;
        ulong[] bits = _pages[pageId].Bitmap!;
        int words = (_pages[pageId].Bump + 63) >> 6;
        int n = 0;
        for (int w = 0; w < words; w++)
        {
            ulong word = bits[w];
            while (word != 0)
            {
                int index = (w << 6) + BitOperations.TrailingZeroCount(word);
                destination[n++] = SlabHandle.Create(pageId, index * chunk);
                word &= word - 1;
            }
        }

        Debug.Assert(n == live, "bitmap population equals the live count");
        return n;
    }

    /// <summary>
    /// Batched form of <see cref="GetLiveChunks(int, Span{SlabHandle})"/> for a small buffer: writes the handles of up
    /// to <c>destination.Length</c> live chunks of the page at chunk index <paramref name="cursor"/> or above, advances
    /// <paramref name="cursor"/> past the last one written, and returns how many (0 when no live chunk remains
    /// there, or the arena does not hold the page). The caller may <see cref="Free"/> the listed chunks between calls.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">pageId is not a page id of this pool, or cursor is negative.</exception>
    /// <exception cref="ArgumentException">destination is empty.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public int GetLiveChunks(int pageId, ref int cursor, Span<SlabHandle> destination)
    {
        _pool.ThrowIfDisposed();
        if ((uint)pageId >= (uint)_maxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(pageId), pageId, $"pageId must be in [0, {_maxPages - 1}] (the pool's MaxPages - 1).");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(cursor);
        if (destination.IsEmpty)
        {
            throw new ArgumentException("destination must hold at least one handle.", nameof(destination));
        }

        ref PageState ps = ref _pages[pageId];
        if (ps.Owner != _id)
        {
            return 0;
        }

        int chunk = _cls[ps.Class].ChunkSize;
        ulong[] bits = ps.Bitmap!;
        int bump = ps.Bump;
        int n = 0;
        int index = cursor;
        while (index < bump && n < destination.Length)
        {
            ulong word = bits[index >> 6] >> (index & 63);
            if (word == 0)
            {
                index = (index | 63) + 1; // next word
                continue;
            }

            index += BitOperations.TrailingZeroCount(word);
            if (index >= bump)
            {
                break;
            }

            destination[n++] = SlabHandle.Create(pageId, index * chunk);
            index++;
        }

        cursor = index;
        return n;
    }

    /// <summary>Decodes a handle that must name a live chunk of this arena; throws (changing nothing) otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int ResolveLive(SlabHandle handle, out int classIndex, out int index)
    {
        int page = handle.PageId;
        if ((uint)page >= (uint)_maxPages || _pages[page].Owner != _id)
        {
            ThrowHelper.ThrowInvalidHandle(handle, "was not handed out by this arena (foreign, invalid, or its page was given back).");
        }

        ref PageState ps = ref _pages[page];
        int c = ps.Class;
        ref ClassState cls = ref _cls[c];
        uint offset = (uint)handle.ByteOffset;
        // offset / ChunkSize by multiplication (exact for 32-bit offsets), then a check that it was a boundary.
        int i = (int)Math.BigMul(offset, cls.DivideMagic, out _);
        Debug.Assert(i == offset / (uint)cls.ChunkSize, "magic division is exact");
        if ((uint)(i * cls.ChunkSize) != offset || i >= ps.Bump)
        {
            ThrowHelper.ThrowInvalidHandle(handle, $"does not name a chunk of page {page} (class {c}, {cls.ChunkSize}-byte chunks): stale or foreign.");
        }

        if ((ps.Bitmap![i >> 6] & (1UL << i)) == 0)
        {
            ThrowHelper.ThrowInvalidHandle(handle, "names a chunk that is not live: double free, or a stale handle.");
        }

        classIndex = c;
        index = i;
        return page;
    }

    /// <summary>Decodes any handle of this pool to (allocated page base, offset &lt; PageSize); throws otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int ResolveAnyPage(SlabHandle handle, out nint pageBase)
    {
        _pool.ThrowIfDisposed();
        ulong value = handle.Value;
        int page = (int)((value >> SlabHandle.PageShift) & SlabHandle.PageMask) - 1;
        int offset = (int)((value >> SlabHandle.OffsetShift) & SlabHandle.OffsetMask) << SlabHandle.OffsetGranularityShift;
        if ((uint)page >= (uint)_maxPages || offset >= _pageSize)
        {
            ThrowHelper.ThrowBadHandleArgument(handle, $"names no chunk of this pool (page id below {_maxPages}, offset below {_pageSize} required).");
        }

        pageBase = Volatile.Read(ref _pageBase[page]);
        if (pageBase == 0)
        {
            _pool.ThrowIfDisposed();
            ThrowHelper.ThrowBadHandleArgument(handle, "names a page this pool never allocated.");
        }

        return offset;
    }

    private long DemandWindowFor(int pagesHeld) => Math.Max(pagesHeld, 1) * (long)_pageSize / DemandWindowDivisor;

    private void DecayDemand()
    {
        long total = 0;
        for (int c = 0; c < _cls.Length; c++)
        {
            total += _cls[c].RecentDemand >>= 1;
        }

        _recentDemandTotal = total;
    }

    private void ReleaseToPool(int page, int c)
    {
        Debug.Assert(_pages[page].Live == 0 && _pages[page].List == None, "only an empty, unlinked page goes back");
        _cls[c].Pages--;
        _pagesHeld--;
        _demandWindowBytes = DemandWindowFor(_pagesHeld);
        if (_poison)
        {
            Poison(page, 0, _pageSize);
        }

        _pool.ReleasePage(page);
    }

    /// <summary>Poison mode: fills [offset, offset + length) of a page this arena holds with <see cref="PoisonByte"/>.</summary>
    private void Poison(int page, int offset, int length)
    {
        Debug.Assert(offset >= 0 && length >= 0 && offset + length <= _pageSize, "poisoned range inside the page");
        // SAFETY: the range lies inside the page (asserted; callers pass chunk bounds or the whole page), which is
        // allocated and held by this arena (single owner, pool not disposed).
        new Span<byte>((byte*)_pageBase[page] + offset, length).Fill(PoisonByte);
    }

    /// <summary>
    /// Poison mode: the chunk about to be handed out must still hold the poison (after the free-list link, which
    /// is the only thing the allocator writes into a free chunk); anything else was written after Free.
    /// </summary>
    private void CheckPoison(int page, int offset, int chunk)
    {
        // SAFETY: [offset + 4, offset + chunk) is the chunk minus its link, inside the page this arena holds.
        var body = new ReadOnlySpan<byte>((byte*)_pageBase[page] + offset + sizeof(int), chunk - sizeof(int));
        int bad = body.IndexOfAnyExcept(PoisonByte);
        if (bad >= 0)
        {
            throw new InvalidOperationException(
                $"Poison check: byte {bad + sizeof(int)} of the {chunk}-byte chunk at offset {offset} of page {page} was written after the chunk was freed.");
        }
    }

    private void LinkFirst(int list, int page)
    {
        Debug.Assert(_pages[page].List == None, "a page is in at most one list");
        int head = _head[list];
        _pages[page].Prev = None;
        _pages[page].Next = head;
        if (head != None)
        {
            _pages[head].Prev = page;
        }
        else
        {
            _tail[list] = page;
        }

        _head[list] = page;
        _pages[page].List = list;
    }

    private void LinkLast(int list, int page)
    {
        Debug.Assert(_pages[page].List == None, "a page is in at most one list");
        int tail = _tail[list];
        _pages[page].Next = None;
        _pages[page].Prev = tail;
        if (tail != None)
        {
            _pages[tail].Next = page;
        }
        else
        {
            _head[list] = page;
        }

        _tail[list] = page;
        _pages[page].List = list;
    }

    private void Unlink(int page)
    {
        int list = _pages[page].List;
        Debug.Assert(list != None, "unlinking a page that is in no list");
        int prev = _pages[page].Prev;
        int next = _pages[page].Next;
        if (prev != None)
        {
            _pages[prev].Next = next;
        }
        else
        {
            _head[list] = next;
        }

        if (next != None)
        {
            _pages[next].Prev = prev;
        }
        else
        {
            _tail[list] = prev;
        }

        _pages[page].Prev = None;
        _pages[page].Next = None;
        _pages[page].List = None;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFreeListCorrupted(int page) =>
        throw new InvalidOperationException($"The free list of page {page} is corrupted: a chunk was written to after it was freed.");

    internal void AddStatistics(int[] pages, long[] live, long[] allocations, long[] handedOutTotal, long[] requestedTotal)
    {
        for (int c = 0; c < _cls.Length; c++)
        {
            pages[c] += Volatile.Read(ref _cls[c].Pages);
            live[c] += Volatile.Read(ref _cls[c].Live);
            allocations[c] += Volatile.Read(ref _cls[c].Allocations);
            handedOutTotal[c] += Volatile.Read(ref _cls[c].HandedOutTotal);
            requestedTotal[c] += Volatile.Read(ref _cls[c].RequestedTotal);
        }
    }

    /// <summary>Checks the arena's invariants (called by <see cref="SlabPool.ValidateInvariants"/>, under the pool's lock).</summary>
    internal void ValidateInvariants(int pagesOwnedInPool)
    {
        static void Check(bool condition, string invariant) => SlabPool.Check(condition, invariant);

        int pagesSeen = 0;
        for (int c = 0; c < _cls.Length; c++)
        {
            int chunk = _cls[c].ChunkSize;
            Check(chunk % 8 == 0 && _cls[c].Capacity * (long)chunk <= _pageSize, "chunks are 8-byte multiples that fit the page");
            int pagesOfClass = 0;
            long live = 0;
            bool spareSeen = false;
            for (int kind = 0; kind < 2; kind++)
            {
                int list = (2 * c) + kind;
                int prev = None;
                for (int p = _head[list]; p != None; p = _pages[p].Next)
                {
                    Check(++pagesOfClass <= _maxPages, "page lists are acyclic");
                    Check(_pages[p].Prev == prev && _pages[p].List == list, "page list links are consistent");
                    Check(_pages[p].Owner == _id && _pages[p].Class == c, "a listed page is held by this arena and cut to the list's class");
                    ValidatePage(p, c);
                    int pageLive = _pages[p].Live;
                    Check(kind == 0 ? pageLive < _cls[c].Capacity : pageLive == _cls[c].Capacity, "partial pages have room, full pages none");
                    if (pageLive == 0)
                    {
                        Check(_cls[c].Spare == p && !spareSeen, "the only empty listed page of a class is its spare");
                        spareSeen = true;
                    }

                    live += pageLive;
                    prev = p;
                }

                Check(_tail[list] == prev, "a list's tail is its last page");
            }

            Check(_cls[c].Spare == None || spareSeen, "a class's spare is an empty page in its partial list");
            if (_reclaimPage != None && _pages[_reclaimPage].Class == c)
            {
                pagesOfClass++;
                live += _pages[_reclaimPage].Live;
            }

            Check(pagesOfClass == _cls[c].Pages, "per-class page count equals the pages listed");
            Check(live == _cls[c].Live, "per-class live chunks equal the sum over its pages");
            Check(_cls[c].HandedOutTotal == _cls[c].Allocations * chunk, "bytes handed out = allocations * chunk size");
            int previousSize = c == 0 ? 0 : _cls[c - 1].ChunkSize;
            Check(_cls[c].RequestedTotal <= _cls[c].HandedOutTotal && _cls[c].RequestedTotal >= _cls[c].Allocations * (previousSize + 1L),
                "every request fits its chunk and is larger than the previous class");
            pagesSeen += pagesOfClass;
        }

        long demand = 0;
        foreach (ClassState cls in _cls)
        {
            Check(cls.RecentDemand >= 0, "demand counters are non-negative");
            demand += cls.RecentDemand;
        }

        Check(demand == _recentDemandTotal, "the demand total equals the sum over classes");
        Check(_demandWindowBytes == DemandWindowFor(_pagesHeld), "the demand window follows the pages held");
        if (_reclaimPage != None)
        {
            Check(_pages[_reclaimPage].Owner == _id && _pages[_reclaimPage].List == None && _pages[_reclaimPage].Live > 0,
                "the page being reclaimed is held, unlisted, and still has live chunks");
            ValidatePage(_reclaimPage, _pages[_reclaimPage].Class);
        }

        Check(pagesSeen == _pagesHeld && _pagesHeld == pagesOwnedInPool, "pages held = pages listed = pages the pool says this arena owns");
    }

    private void ValidatePage(int page, int c)
    {
        static void Check(bool condition, string invariant) => SlabPool.Check(condition, invariant);

        int bump = _pages[page].Bump;
        Check(bump >= 0 && bump <= _cls[c].Capacity, "cut chunks within the page's capacity");
        ulong[] bits = _pages[page].Bitmap!;
        int population = 0;
        for (int w = 0; w < bits.Length; w++)
        {
            ulong word = bits[w];
            int firstBeyondBump = bump - (w << 6);
            if (firstBeyondBump < 64)
            {
                ulong allowed = firstBeyondBump <= 0 ? 0 : (1UL << firstBeyondBump) - 1;
                Check((word & ~allowed) == 0, "no chunk beyond the bump index is live");
            }

            population += BitOperations.PopCount(word);
        }

        Check(population == _pages[page].Live, "a page's live count equals its bitmap population");

        // Walk the free list: distinct, cut, not live; free + live == cut.
        var seen = new bool[bump];
        int free = 0;
        int chunk = _cls[c].ChunkSize;
        for (int link = _pages[page].FreeHead; link != 0;)
        {
            int index = link - 1;
            Check((uint)index < (uint)bump && !seen[index], "free-list entries are distinct cut chunks");
            Check((bits[index >> 6] & (1UL << index)) == 0, "a free-list chunk is not live");
            seen[index] = true;
            free++;
            // SAFETY: index < bump <= capacity, so the link lies inside the allocated page this arena holds.
            link = *(int*)((byte*)_pageBase[page] + ((long)index * chunk));
        }

        Check(free + _pages[page].Live == bump, "free + live chunks = chunks cut");
    }
}

/// <summary>Per-class state of one arena.</summary>
internal struct ClassState
{
    /// <summary>Chunk size in bytes (a multiple of 8).</summary>
    public int ChunkSize;

    /// <summary>Chunks per page: Capacity * ChunkSize &lt;= PageSize.</summary>
    public int Capacity;

    /// <summary>ceil(2^64 / ChunkSize): offset / ChunkSize == high 64 bits of (offset * DivideMagic) for any 32-bit offset (Lemire).</summary>
    public ulong DivideMagic;

    /// <summary>The one empty page the class keeps (in its partial list, at the tail), or -1.</summary>
    public int Spare;

    /// <summary>Pages held: those in the class's lists, plus the page being reclaimed if it is of this class.</summary>
    public int Pages;

    /// <summary>Live chunks: the sum of Live over the class's pages.</summary>
    public long Live;

    /// <summary>Allocations served so far.</summary>
    public long Allocations;

    /// <summary>Chunk bytes handed out so far (Allocations * ChunkSize).</summary>
    public long HandedOutTotal;

    /// <summary>Bytes requested so far.</summary>
    public long RequestedTotal;

    /// <summary>Recent demand in chunk bytes of allocations served and of in-place rewrites; halved with every demand window.</summary>
    public long RecentDemand;
}
