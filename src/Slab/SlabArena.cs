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
/// <see cref="TryPickPageToReclaim"/>, lists the page's live chunks with <see cref="GetLiveChunks"/>, evicts and
/// frees each; when the last one is freed the page goes back to the pool, ready for any class.</para>
/// <para><b>Limits of detection.</b> Free and GetChunkSize reject handles of other arenas, handles that do not
/// name a chunk boundary of their page's current class, and chunks that are not live. A stale handle whose
/// chunk was freed and handed out again (or whose page was re-cut so that the same offset is again a live
/// chunk) cannot be told from the new owner's handle: keep a generation beside the handle (16 free bits).</para>
/// </remarks>
public sealed unsafe class SlabArena
{
    private const int None = SlabPool.None;

    // Demand counters are halved each time a quarter of the held page bytes has been asked for: they weigh
    // roughly the last half turnover of the arena's memory, so a shifted mix wins its pages within a turnover.
    private const int DemandWindowDivisor = 4;

    private readonly SlabPool _pool;
    private readonly int _id;
    private readonly SizeClassTable _classes;
    private readonly int _pageSize;
    private readonly int _maxPages;
    private readonly int _maxChunkSize;

    // Per class: chunk size and chunks per page (capacity * size <= PageSize).
    private readonly int[] _chunkSize;
    private readonly int[] _capacity;

    // The pool's page table and per-page arrays (this arena writes the entries of the pages it holds).
    private readonly nint[] _pageBase;
    private readonly int[] _pageOwner;
    private readonly int[] _pageClass;
    private readonly int[] _pageLive;
    private readonly int[] _pageBump;
    private readonly int[] _pageFreeHead;
    private readonly int[] _pagePrev;
    private readonly int[] _pageNext;
    private readonly int[] _pageList;
    private readonly ulong[]?[] _pageBitmap;

    // Page lists: list 2c = class c's partial pages, 2c + 1 = its full pages. None-terminated, doubly linked
    // through _pagePrev/_pageNext; _pageList[p] names the list holding p.
    private readonly int[] _head;
    private readonly int[] _tail;

    // Per class: the one empty page kept (in the partial list, at its tail), or None.
    private readonly int[] _spare;

    // Per class: pages held (in its lists, plus the reclaim page if it is of this class).
    private readonly int[] _pagesInClass;

    // Per class: live chunks == sum of _pageLive over the class's pages.
    private readonly long[] _liveChunks;

    // Per class, cumulative: allocations, chunk bytes handed out, bytes requested.
    private readonly long[] _allocations;
    private readonly long[] _handedOutTotal;
    private readonly long[] _requestedTotal;

    // Per class: recent demand, in chunk bytes asked for (allocations that failed included). All counters are
    // halved whenever their sum exceeds a quarter of the bytes of the pages held (see DemandWindowDivisor). Invariant: _recentDemandTotal == sum of _recentDemand.
    private readonly long[] _recentDemand;
    private long _recentDemandTotal;

    // The page handed out by TryPickPageToReclaim whose live chunks are being freed, or None. It is in no
    // list, so nothing is allocated from it; it returns to the pool when its last chunk is freed.
    private int _reclaimPage = None;

    // Pages this arena holds (in lists or being reclaimed).
    private int _pagesHeld;

    internal SlabArena(SlabPool pool, int id)
    {
        _pool = pool;
        _id = id;
        _classes = pool.Classes;
        _pageSize = pool.PageSize;
        _maxPages = pool.MaxPages;
        _maxChunkSize = _classes.MaxChunkSize;
        int count = _classes.Count;
        _chunkSize = new int[count];
        _capacity = new int[count];
        for (int c = 0; c < count; c++)
        {
            _chunkSize[c] = _classes[c];
            _capacity[c] = _pageSize / _classes[c];
        }

        _pageBase = pool.PageBase;
        _pageOwner = pool.PageOwner;
        _pageClass = pool.PageClass;
        _pageLive = pool.PageLive;
        _pageBump = pool.PageBump;
        _pageFreeHead = pool.PageFreeHead;
        _pagePrev = pool.PagePrev;
        _pageNext = pool.PageNext;
        _pageList = pool.PageList;
        _pageBitmap = pool.PageBitmap;

        _head = new int[2 * count];
        _tail = new int[2 * count];
        _spare = new int[count];
        Array.Fill(_head, None);
        Array.Fill(_tail, None);
        Array.Fill(_spare, None);
        _pagesInClass = new int[count];
        _liveChunks = new long[count];
        _allocations = new long[count];
        _handedOutTotal = new long[count];
        _requestedTotal = new long[count];
        _recentDemand = new long[count];
    }

    /// <summary>The pool this arena takes pages from.</summary>
    public SlabPool Pool => _pool;

    /// <summary>The size classes (the pool's).</summary>
    public SizeClassTable Classes => _classes;

    /// <summary>Most chunks one page can hold: the span size that always suffices for <see cref="GetLiveChunks"/>.</summary>
    public int MaxChunksPerPage => _pool.MaxChunksPerPage;

    /// <summary>Pages this arena holds now.</summary>
    public int PagesHeld => _pagesHeld;

    internal long FootprintBytes =>
        (((long)_chunkSize.Length * 2) + _head.Length + _tail.Length + _spare.Length + _pagesInClass.Length) * sizeof(int)
        + ((long)_liveChunks.Length * 5 * sizeof(long));

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
        _recentDemand[c] += _chunkSize[c];
        _recentDemandTotal += _chunkSize[c];
        if (_recentDemandTotal > Math.Max(_pagesHeld, 1) * (long)_pageSize / DemandWindowDivisor)
        {
            DecayDemand();
        }

        int page = _head[2 * c];
        if (page == None)
        {
            if (!_pool.TryAcquirePage(_id, c, out page))
            {
                handle = default;
                return false;
            }

            _pagesInClass[c]++;
            _pagesHeld++;
            LinkFirst(2 * c, page);
        }

        int chunk = _chunkSize[c];
        ulong[] bits = _pageBitmap[page]!;
        int index;
        int freeHead = _pageFreeHead[page];
        if (freeHead != 0)
        {
            index = freeHead - 1;
            // SAFETY: index < _pageBump[page] <= capacity (checked when the link was stored or read), so the 4 bytes
            // at index * chunk lie inside the page; the page is allocated (pool not disposed) and held by this arena.
            int next = *(int*)((byte*)_pageBase[page] + ((long)index * chunk));
            if ((uint)next > (uint)_pageBump[page] || (next != 0 && (bits[(next - 1) >> 6] & (1UL << (next - 1))) != 0))
            {
                ThrowFreeListCorrupted(page);
            }

            _pageFreeHead[page] = next;
        }
        else
        {
            index = _pageBump[page]++;
            Debug.Assert(index < _capacity[c], "a partial page with an empty free list has uncut chunks");
        }

        Debug.Assert((bits[index >> 6] & (1UL << index)) == 0, "a free chunk is not live");
        bits[index >> 6] |= 1UL << index;
        if (++_pageLive[page] == _capacity[c])
        {
            Unlink(page);
            LinkFirst((2 * c) + 1, page);
        }

        if (_spare[c] == page)
        {
            _spare[c] = None;
        }

        _liveChunks[c]++;
        _allocations[c]++;
        _handedOutTotal[c] += chunk;
        _requestedTotal[c] += size;
        handle = SlabHandle.Create(page, index * chunk);
        return true;
    }

    /// <summary>
    /// Frees a chunk this arena handed out. Its first 4 bytes become a free-list link; the page stays readable.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The handle is not a live chunk of this arena (double free, another arena's or pool's handle, not a chunk
    /// boundary); nothing is changed.
    /// </exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public void Free(SlabHandle handle)
    {
        _pool.ThrowIfDisposed();
        int page = ResolveLive(handle, out int c, out int index);
        int chunk = _chunkSize[c];
        _pageBitmap[page]![index >> 6] &= ~(1UL << index);
        // SAFETY: ResolveLive proved index < _pageBump[page] <= capacity, so [index * chunk, +4) lies inside the page,
        // which is allocated (pool not disposed) and held by this arena.
        *(int*)((byte*)_pageBase[page] + ((long)index * chunk)) = _pageFreeHead[page];
        _pageFreeHead[page] = index + 1;
        int live = --_pageLive[page];
        _liveChunks[c]--;

        if (page == _reclaimPage)
        {
            if (live == 0)
            {
                _reclaimPage = None;
                ReleaseToPool(page, c);
            }

            return;
        }

        if (_pageList[page] == (2 * c) + 1)
        {
            // It was full: it has a free chunk again.
            Unlink(page);
            LinkFirst(2 * c, page);
        }

        if (live == 0)
        {
            Unlink(page);
            if (_spare[c] == None)
            {
                _spare[c] = page;
                LinkLast(2 * c, page);
            }
            else
            {
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
        return _chunkSize[c];
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
    /// Picks a page of this arena cut to a class other than <paramref name="forClassIndex"/> to empty, so its memory
    /// can serve the class that needs it. Preference: a class's spare empty page (given back to the pool at once;
    /// <see cref="GetLiveChunks"/> then returns 0); else, if <paramref name="forClassIndex"/> holds no page or fewer
    /// pages than its fair share (pages held * its share of recent demand, in chunk bytes asked for over about the last
    /// half turnover of the arena's memory), the page with the fewest live chunks in the class furthest (and at least
    /// one page) above its share. Returns false otherwise: then evict within the class. From then on nothing is allocated from that page; the caller
    /// evicts and <see cref="Free"/>s every chunk <see cref="GetLiveChunks"/> lists, and the last Free returns the page to
    /// the pool. While a picked page still has live chunks, every call returns that same page again.
    /// Cost: O(classes + pages of the chosen class).
    /// </summary>
    /// <returns>False if no page should move: evict an entry of the class instead.</returns>
    /// <exception cref="ArgumentOutOfRangeException">forClassIndex is not a class index.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public bool TryPickPageToReclaim(int forClassIndex, out int pageId)
    {
        _pool.ThrowIfDisposed();
        if ((uint)forClassIndex >= (uint)_classes.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(forClassIndex), forClassIndex, $"forClassIndex must be in [0, {_classes.Count - 1}] (Classes.Count - 1).");
        }

        if (_reclaimPage != None)
        {
            pageId = _reclaimPage;
            return true;
        }

        for (int c = 0; c < _spare.Length; c++)
        {
            int spare = _spare[c];
            if (c != forClassIndex && spare != None)
            {
                _spare[c] = None;
                Unlink(spare);
                ReleaseToPool(spare, c);
                pageId = spare;
                return true;
            }
        }

        // Fair share: a class deserves pages in proportion to its recent demand. Move a page only to a class
        // below its share (or with no page at all), from the class furthest above its share and at least one
        // page above it; otherwise the caller should evict within the class. The one-page margin is the
        // hysteresis that keeps two classes of a steady mix from passing a page back and forth (each move
        // costs a page of evictions): after a move the victim is still at or above its share.
        double pagesPerDemandByte = _recentDemandTotal == 0 ? 0 : (double)_pagesHeld / _recentDemandTotal;
        int needyPages = _pagesInClass[forClassIndex];
        bool hasNoPage = needyPages == 0;
        if (!hasNoPage && needyPages >= _recentDemand[forClassIndex] * pagesPerDemandByte)
        {
            pageId = None;
            return false;
        }

        int victimClass = None;
        double victimExcess = hasNoPage ? 0 : 1 - 1e-9;
        for (int c = 0; c < _pagesInClass.Length; c++)
        {
            if (c == forClassIndex || _pagesInClass[c] == 0)
            {
                continue;
            }

            double excess = _pagesInClass[c] - (_recentDemand[c] * pagesPerDemandByte);
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

        int best = None;
        for (int list = 2 * victimClass; list <= (2 * victimClass) + 1; list++)
        {
            for (int p = _head[list]; p != None; p = _pageNext[p])
            {
                if (best == None || _pageLive[p] < _pageLive[best])
                {
                    best = p;
                }
            }
        }

        Debug.Assert(best != None && _pageLive[best] > 0, "a class with pages and no spare has a non-empty page");
        Unlink(best);
        _reclaimPage = best;
        pageId = best;
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

        if (_pageOwner[pageId] != _id)
        {
            return 0;
        }

        int live = _pageLive[pageId];
        if (destination.Length < live)
        {
            throw new ArgumentException($"destination holds {destination.Length} handles but page {pageId} has {live} live chunks; a span of MaxChunksPerPage ({MaxChunksPerPage}) always suffices.", nameof(destination));
        }

        int chunk = _chunkSize[_pageClass[pageId]];
        ulong[] bits = _pageBitmap[pageId]!;
        int words = (_pageBump[pageId] + 63) >> 6;
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

    /// <summary>Decodes a handle that must name a live chunk of this arena; throws (changing nothing) otherwise.</summary>
    private int ResolveLive(SlabHandle handle, out int classIndex, out int index)
    {
        int page = handle.PageId;
        if ((uint)page >= (uint)_maxPages || _pageOwner[page] != _id)
        {
            ThrowHelper.ThrowInvalidHandle(handle, "was not handed out by this arena (foreign, invalid, or its page was given back).");
        }

        int c = _pageClass[page];
        int chunk = _chunkSize[c];
        int offset = handle.ByteOffset;
        int i = offset / chunk;
        if (i * chunk != offset || i >= _pageBump[page])
        {
            ThrowHelper.ThrowInvalidHandle(handle, $"does not name a chunk of page {page} (class {c}, {chunk}-byte chunks): stale or foreign.");
        }

        if ((_pageBitmap[page]![i >> 6] & (1UL << i)) == 0)
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

    private void DecayDemand()
    {
        long total = 0;
        for (int c = 0; c < _recentDemand.Length; c++)
        {
            total += _recentDemand[c] >>= 1;
        }

        _recentDemandTotal = total;
    }

    private void ReleaseToPool(int page, int c)
    {
        Debug.Assert(_pageLive[page] == 0 && _pageList[page] == None, "only an empty, unlinked page goes back");
        _pagesInClass[c]--;
        _pagesHeld--;
        _pool.ReleasePage(page);
    }

    private void LinkFirst(int list, int page)
    {
        Debug.Assert(_pageList[page] == None, "a page is in at most one list");
        int head = _head[list];
        _pagePrev[page] = None;
        _pageNext[page] = head;
        if (head != None)
        {
            _pagePrev[head] = page;
        }
        else
        {
            _tail[list] = page;
        }

        _head[list] = page;
        _pageList[page] = list;
    }

    private void LinkLast(int list, int page)
    {
        Debug.Assert(_pageList[page] == None, "a page is in at most one list");
        int tail = _tail[list];
        _pageNext[page] = None;
        _pagePrev[page] = tail;
        if (tail != None)
        {
            _pageNext[tail] = page;
        }
        else
        {
            _head[list] = page;
        }

        _tail[list] = page;
        _pageList[page] = list;
    }

    private void Unlink(int page)
    {
        int list = _pageList[page];
        Debug.Assert(list != None, "unlinking a page that is in no list");
        int prev = _pagePrev[page];
        int next = _pageNext[page];
        if (prev != None)
        {
            _pageNext[prev] = next;
        }
        else
        {
            _head[list] = next;
        }

        if (next != None)
        {
            _pagePrev[next] = prev;
        }
        else
        {
            _tail[list] = prev;
        }

        _pagePrev[page] = None;
        _pageNext[page] = None;
        _pageList[page] = None;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFreeListCorrupted(int page) =>
        throw new InvalidOperationException($"The free list of page {page} is corrupted: a chunk was written to after it was freed.");

    internal void AddStatistics(int[] pages, long[] live, long[] allocations, long[] handedOutTotal, long[] requestedTotal)
    {
        for (int c = 0; c < _pagesInClass.Length; c++)
        {
            pages[c] += Volatile.Read(ref _pagesInClass[c]);
            live[c] += Volatile.Read(ref _liveChunks[c]);
            allocations[c] += Volatile.Read(ref _allocations[c]);
            handedOutTotal[c] += Volatile.Read(ref _handedOutTotal[c]);
            requestedTotal[c] += Volatile.Read(ref _requestedTotal[c]);
        }
    }

    /// <summary>Checks the arena's invariants (called by <see cref="SlabPool.ValidateInvariants"/>, under the pool's lock).</summary>
    internal void ValidateInvariants(int pagesOwnedInPool)
    {
        static void Check(bool condition, string invariant) => SlabPool.Check(condition, invariant);

        int pagesSeen = 0;
        for (int c = 0; c < _chunkSize.Length; c++)
        {
            int chunk = _chunkSize[c];
            Check(chunk % 8 == 0 && _capacity[c] * (long)chunk <= _pageSize, "chunks are 8-byte multiples that fit the page");
            int pagesOfClass = 0;
            long live = 0;
            bool spareSeen = false;
            for (int kind = 0; kind < 2; kind++)
            {
                int list = (2 * c) + kind;
                int prev = None;
                for (int p = _head[list]; p != None; p = _pageNext[p])
                {
                    Check(++pagesOfClass <= _maxPages, "page lists are acyclic");
                    Check(_pagePrev[p] == prev && _pageList[p] == list, "page list links are consistent");
                    Check(_pageOwner[p] == _id && _pageClass[p] == c, "a listed page is held by this arena and cut to the list's class");
                    ValidatePage(p, c);
                    int pageLive = _pageLive[p];
                    Check(kind == 0 ? pageLive < _capacity[c] : pageLive == _capacity[c], "partial pages have room, full pages none");
                    if (pageLive == 0)
                    {
                        Check(_spare[c] == p && !spareSeen, "the only empty listed page of a class is its spare");
                        spareSeen = true;
                    }

                    live += pageLive;
                    prev = p;
                }

                Check(_tail[list] == prev, "a list's tail is its last page");
            }

            Check(_spare[c] == None || spareSeen, "a class's spare is an empty page in its partial list");
            if (_reclaimPage != None && _pageClass[_reclaimPage] == c)
            {
                pagesOfClass++;
                live += _pageLive[_reclaimPage];
            }

            Check(pagesOfClass == _pagesInClass[c], "per-class page count equals the pages listed");
            Check(live == _liveChunks[c], "per-class live chunks equal the sum over its pages");
            Check(_handedOutTotal[c] == _allocations[c] * chunk, "bytes handed out = allocations * chunk size");
            int previousSize = c == 0 ? 0 : _chunkSize[c - 1];
            Check(_requestedTotal[c] <= _handedOutTotal[c] && _requestedTotal[c] >= _allocations[c] * (previousSize + 1L),
                "every request fits its chunk and is larger than the previous class");
            pagesSeen += pagesOfClass;
        }

        long demand = 0;
        foreach (long d in _recentDemand)
        {
            Check(d >= 0, "demand counters are non-negative");
            demand += d;
        }

        Check(demand == _recentDemandTotal, "the demand total equals the sum over classes");
        if (_reclaimPage != None)
        {
            Check(_pageOwner[_reclaimPage] == _id && _pageList[_reclaimPage] == None && _pageLive[_reclaimPage] > 0,
                "the page being reclaimed is held, unlisted, and still has live chunks");
            ValidatePage(_reclaimPage, _pageClass[_reclaimPage]);
        }

        Check(pagesSeen == _pagesHeld && _pagesHeld == pagesOwnedInPool, "pages held = pages listed = pages the pool says this arena owns");
    }

    private void ValidatePage(int page, int c)
    {
        static void Check(bool condition, string invariant) => SlabPool.Check(condition, invariant);

        int bump = _pageBump[page];
        Check(bump >= 0 && bump <= _capacity[c], "cut chunks within the page's capacity");
        ulong[] bits = _pageBitmap[page]!;
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

        Check(population == _pageLive[page], "a page's live count equals its bitmap population");

        // Walk the free list: distinct, cut, not live; free + live == cut.
        var seen = new bool[bump];
        int free = 0;
        int chunk = _chunkSize[c];
        for (int link = _pageFreeHead[page]; link != 0;)
        {
            int index = link - 1;
            Check((uint)index < (uint)bump && !seen[index], "free-list entries are distinct cut chunks");
            Check((bits[index >> 6] & (1UL << index)) == 0, "a free-list chunk is not live");
            seen[index] = true;
            free++;
            // SAFETY: index < bump <= capacity, so the link lies inside the allocated page this arena holds.
            link = *(int*)((byte*)_pageBase[page] + ((long)index * chunk));
        }

        Check(free + _pageLive[page] == bump, "free + live chunks = chunks cut");
    }
}
